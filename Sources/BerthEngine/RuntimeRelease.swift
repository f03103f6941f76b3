import BerthOS

/// Who deletes the runtime's container after its init exits: the container's monitor does, at once
/// (berth-monitor `finish()`), holding `runtime.lock` in its state directory until it has, and marking
/// the exit file `runtimeDeleted` when the runtime said yes. The engine deletes only what is left: a
/// monitor that died first, a delete that failed, or a monitor from before monitors deleted (no mark).
enum RuntimeRelease {
    static func lockPath(stateDirectory: String) -> String { stateDirectory + "/runtime.lock" }

    /// Whether the engine must still ask the runtime to delete the container whose exit is `exit`:
    /// not when the monitor did, nor while it is doing so.
    static func needed(_ exit: ExitRecord, stateDirectory: String) -> Bool {
        switch exit.runtimeDeleted {
        case nil: return true
        case true?: return false
        case false?: return !FileLock.isHeld(lockPath(stateDirectory: stateDirectory))
        }
    }
}

extension Engine {
    /// Before the runtime is given the container's ID again (a restart), or when the container goes:
    /// waits for a monitor still deleting the previous run (a delete by ID must not meet the next
    /// run's container), then deletes whatever the runtime may still hold.
    func releaseRuntime(_ record: ContainerRecord, _ runtime: OCIRuntime) {
        let lock = RuntimeRelease.lockPath(stateDirectory: layout.monitorState(record.id))
        // A delete takes milliseconds; a monitor that holds the lock for long is stopped, not deleting.
        if FileSystem.exists(lock) { _ = try? FileLock.acquire(lock, waitingAtMost: 10) }
        if let exit = RecordFile.read(ExitRecord.self, layout.exitFile(record.id)), exit.runtimeDeleted == true,
            record.state.pid == 0 || exit.pid == record.state.pid
        {
            return
        }
        runtime.forceDelete(record.id)
    }
}
