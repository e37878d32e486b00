#!/bin/sh
# kheadersfs kernel hook: "kheadersfs kernel-hook @EVENT@ RELEASE" when a kernel's packages run their
# hooks (as dkms does), installed by @INSTALLER@. Settings and off switches: /etc/kheadersfs/kernel-hooks.conf
# and kheadersfs(1), KERNEL HOOKS. It never fails the kernel's package: it always exits 0.
# kheadersfs removed but not purged (this file is a conffile): nothing to do.
[ -x @KHEADERSFS@ ] || exit 0
@KHEADERSFS@ kernel-hook @EVENT@ "$1" </dev/null ||
  echo "kheadersfs: warning: \"kheadersfs kernel-hook @EVENT@ $1\" exited $?; the kernel's packages are not affected" >&2
exit 0
