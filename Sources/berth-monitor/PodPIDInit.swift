#if canImport(Glibc)
import Glibc
#endif
import CBerthShim

/// `berth-monitor --pod-pid-init`: PID 1 of a CRI pod's shared PID namespace (what the pause container
/// is to containerd). The namespace lives as long as this process: it reaps the orphans the pod's
/// containers leave and exits on SIGTERM or SIGINT (the only signals PID 1 gets unless it handles them).
enum PodPIDInit {
    static func run() -> Never {
        // Nothing of the daemon that cloned it stays open here (its connections, its log).
        _ = berth_close_range(3, UInt32.max, 0)
        let null = open("/dev/null", O_RDWR)
        if null >= 0 {
            for fd: Int32 in 0...2 { dup2(null, fd) }
            if null > 2 { close(null) }
        }
        _ = setsid()
        signal(SIGTERM) { _ in _exit(0) }
        signal(SIGINT) { _ in _exit(0) }
        // A handler (not SIG_IGN, which would make the kernel reap for us and keep nothing to wait on)
        // so that sigsuspend returns when a child ends.
        signal(SIGCHLD) { _ in }
        // SIGCHLD stays blocked but inside sigsuspend, so none arrives between the reaping and the wait.
        var blocked = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGCHLD)
        sigprocmask(SIG_BLOCK, &blocked, nil)
        var none = sigset_t()
        sigemptyset(&none)
        while true {
            while waitpid(-1, nil, WNOHANG) > 0 {}
            sigsuspend(&none)
        }
    }
}
