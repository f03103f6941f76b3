import ArgumentParser
import BerthOS
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

// The entry point, instead of `@main` on an AsyncParsableCommand: that one ends the main thread with
// dispatch_main(), whose pthread_exit() unwinds the stack — and the first unwind in a static executable
// makes libgcc sort every FDE of the binary's .eh_frame (~80 ms for berth's 180 MB). Every `berth`
// command would pay it, and `berth run --rm` runs two (the CLI and the monitor's exit command). Here the
// command runs on the cooperative pool while the main thread waits, and the process ends with exit().
// `berth agent` keeps one heap arena (see ResidentMemory): set before any thread starts, since a thread
// keeps the arena it first allocated from.
if CommandLine.arguments.dropFirst().first == "agent" { ResidentMemory.useOneHeapArena() }
let finished = DispatchSemaphore(value: 0)
nonisolated(unsafe) var failure: (any Error)?
Task.detached {
    do {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let hot = HotRun.parse(arguments) {
            try await hot.execute()
        } else {
            var command = try CommandDispatch.parse(arguments) ?? Berth.parseAsRoot()
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        }
    } catch {
        failure = error
    }
    finished.signal()
}
finished.wait()
if let failure { Berth.exit(withError: failure) }
exit(0)
