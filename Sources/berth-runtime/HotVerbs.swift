#if canImport(Glibc)
import Glibc
#endif
import BerthRuntime

extension HotVerbs {
    /// Runs `command` as the ArgumentParser commands of the same names would; never returns.
    static func execute(_ command: Command) -> Never {
        var status: Int32 = 0
        runOrExit { () throws(RuntimeError) in
            switch command {
            case .create(let options): try runtime().create(options)
            case .run(let options, let detach): status = try runtime().run(options, detach: detach)
            case .start(let id): try runtime().start(id: id)
            case .state(let id): print(try JSONText.encode(try runtime().state(id: id)))
            case .kill(let id, let signal, let all):
                try runtime().kill(id: id, signal: try Signals.parse(signal), all: all)
            case .delete(let id, let force): try runtime().delete(id: id, force: force)
            }
        }
        exit(status)
    }
}
