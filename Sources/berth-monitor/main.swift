// berth-monitor: one small process per container, what conmon is to podman and containerd-shim to
// containerd. The engine starts it in a session of its own; it stays the parent of the container's
// init (a child subreaper) and outlives the CLI or daemon that started it:
//
//   1. runs `RUNTIME run --detach` with the container's stdio on pipes (or a console socket for a
//      terminal), the attach socket the engine made (and may already be connected to) in hand,
//   2. tells the engine the init's pid on the sync descriptor (`started PID`),
//   3. copies the container's output into its log and to attached clients (docker's framing, see
//      BerthOS.StreamFrame) and their input to the container,
//   4. reaps the init, writes the exit file (status and time) atomically, tells attached clients,
//      deletes the runtime's container, and execs the exit command (`berth container cleanup ID`) so
//      that --rm and restart policies apply even when no engine is running.
//
// Kept to the C library and BerthOS so that it stays small (≤ 2 MB resident).
#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

if CommandLine.arguments.count > 1 && CommandLine.arguments[1] == "--legacy-cgroups" {
    LegacyCgroupView.exec(Array(CommandLine.arguments.dropFirst(2)))
}
if CommandLine.arguments.count > 1 && CommandLine.arguments[1] == "--pod-pid-init" {
    PodPIDInit.run()
}
let options = MonitorOptions.parse(Array(CommandLine.arguments.dropFirst()))
signal(SIGPIPE, SIG_IGN)
_ = berth_prctl(36 /* PR_SET_CHILD_SUBREAPER */, 1, 0, 0, 0)
let monitor = Monitor(options: options)
monitor.run()
