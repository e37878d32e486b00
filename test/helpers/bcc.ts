// What BCC does with a kernel tree when it compiles a probe (and what BPF tools built on it share):
// kconfig.h forced in, then the arch's and the generic include directories in Kbuild's order, and no
// system headers but the compiler's own.
import path from 'node:path'

/** A probe that includes linux/sched.h, where BPF tools start. */
export const SCHED_PROBE = '#include <linux/sched.h>\nint size = sizeof(struct task_struct);\n'

/** gcc arguments that preprocess `source` against the kernel tree `tree` of `arch`, as BCC does. */
export function bccPreprocessArgs(tree: string, arch: string, source: string, gccInclude?: string): string[] {
  const inc = (p: string): string[] => ['-I', path.join(tree, p)]
  return [
    '-E',
    '-nostdinc',
    ...(gccInclude === undefined ? [] : ['-isystem', gccInclude]),
    '-D__KERNEL__',
    '-include',
    path.join(tree, 'include/linux/kconfig.h'),
    ...inc(`arch/${arch}/include`),
    ...inc(`arch/${arch}/include/generated`),
    ...inc('include'),
    ...inc(`arch/${arch}/include/uapi`),
    ...inc(`arch/${arch}/include/generated/uapi`),
    ...inc('include/uapi'),
    ...inc('include/generated/uapi'),
    source,
  ]
}
