#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// process.terminal: a pty made inside the container (its own devpts), the slave as stdio and
/// controlling terminal, the master sent to the --console-socket.
enum Terminal {
    static func setUp(consoleSocket: FileDescriptor, size: Spec.ConsoleSize?, bindConsole: Bool) throws(RuntimeError) {
        var master: Int32 = -1
        var name = [CChar](repeating: 0, count: 128)
        guard berth_open_pty(&master, &name, name.count) == 0 else {
            throw .system(
                SystemCallError(call: "posix_openpt", errno: errno), context: "creating the container's terminal")
        }
        let masterFd = FileDescriptor(owning: master)
        let slavePath = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if let size {
            var window = winsize(ws_row: size.height, ws_col: size.width, ws_xpixel: 0, ws_ypixel: 0)
            _ = berth_ioctl_ptr(master, UInt(TIOCSWINSZ), &window)
        }
        let slave = try RuntimeError.wrap("opening \(slavePath)") { () throws(SystemCallError) in
            try FileDescriptor.open(slavePath, O_RDWR | O_NOCTTY)
        }
        if bindConsole {
            // /dev/console is the pty, as on a real machine's console.
            try RuntimeError.wrap("binding /dev/console") { () throws(SystemCallError) in
                let root = try Root(path: "/")
                let console = try root.makeFile("/dev/console", mode: 0o600)
                try Mount.mount(source: slavePath, target: console.procPath, type: nil, flags: UInt(MS_BIND), data: nil)
            }
        }
        guard berth_send_fd(consoleSocket.rawValue, master, nil, 0) == 0 else {
            throw .system(
                SystemCallError(call: "sendmsg", errno: errno), context: "sending the pty master to the console socket")
        }
        masterFd.close()
        consoleSocket.close()
        _ = try RuntimeError.wrap("making the terminal controlling") { () throws(SystemCallError) in
            _ = setsid()
            _ = try sys("ioctl(TIOCSCTTY)") { berth_ioctl_int(slave.rawValue, UInt(TIOCSCTTY), 0) }
            for target: Int32 in 0...2 {
                _ = try sys("dup2") { dup2(slave.rawValue, target) }
            }
        }
    }
}
