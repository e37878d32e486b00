// The subset of fuse-native 2.2.6 (no bundled types) that kheadersfs uses. Callbacks follow its
// convention: cb(code, value), code >= 0 success (for read: the byte count), negative = -errno.
declare module 'fuse-native' {
  type Cb<T = never> = (code: number, value?: T) => void
  export interface Stat {
    mode: number
    uid: number
    gid: number
    size: number
    nlink: number
    ino?: number
    blksize?: number
    blocks?: number
    atime: Date
    mtime: Date
    ctime: Date
  }
  export interface Statfs {
    bsize: number
    frsize: number
    blocks: number
    bfree: number
    bavail: number
    files: number
    ffree: number
    favail: number
    fsid: number
    flag: number
    namemax: number
  }
  export interface Ops {
    init?(cb: Cb): void
    getattr?(path: string, cb: Cb<Stat>): void
    fgetattr?(path: string, fd: number, cb: Cb<Stat>): void
    readdir?(path: string, cb: (code: number, names?: string[], stats?: Stat[]) => void): void
    read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytes: number) => void): void
    readlink?(path: string, cb: Cb<string>): void
    statfs?(path: string, cb: Cb<Statfs>): void
    [op: string]: ((...args: never[]) => void) | undefined
  }
  export interface Options {
    force?: boolean
    mkdir?: boolean
    debug?: boolean
    allowOther?: boolean
    allowRoot?: boolean
    autoUnmount?: boolean
    defaultPermissions?: boolean
    fsname?: string
    subtype?: string
    kernelCache?: boolean
    entryTimeout?: number
    attrTimeout?: number
    timeout?: number | false
  }
  export default class Fuse {
    constructor(mnt: string, ops: Ops, opts?: Options)
    mnt: string
    mount(cb: (err: Error | null) => void): void
    unmount(cb: (err: Error | null) => void): void
    static unmount(mnt: string, cb: (err: Error | null) => void): void
    static EROFS: number
    static ENOENT: number
    static EIO: number
  }
}
