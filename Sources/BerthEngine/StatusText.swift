#if canImport(Glibc)
import Glibc
#endif
import BerthOS

extension ContainerRecord {
    /// docker ps's STATUS text: `Up 5 seconds`, `Exited (0) 3 minutes ago`, `Created` (the CLI's ps and
    /// the Docker API's container list both show it).
    public var statusText: String {
        func since(_ time: String) -> String {
            guard let t = Timestamp.parse(time) else { return "" }
            return humanDuration(max(0, Int(Glibc.time(nil)) - t.seconds))
        }
        switch state.status {
        case .created: return "Created"
        case .running: return "Up \(since(state.startedAt))" + (state.health.map { " (\($0.status))" } ?? "")
        case .paused: return "Up \(since(state.startedAt)) (Paused)"
        case .restarting: return "Restarting (\(state.exitCode)) \(since(state.finishedAt)) ago"
        case .removing: return "Removal In Progress"
        case .exited: return "Exited (\(state.exitCode)) \(since(state.finishedAt)) ago"
        case .dead: return "Dead"
        }
    }
}

/// go-units HumanDuration, as docker prints ages (ps's CREATED and STATUS).
public func humanDuration(_ seconds: Int) -> String {
    switch seconds {
    case ..<1: return "Less than a second"
    case 1: return "1 second"
    case ..<60: return "\(seconds) seconds"
    case ..<120: return "About a minute"
    case ..<3600: return "\(seconds / 60) minutes"
    case ..<7200: return "About an hour"
    case ..<(48 * 3600): return "\(seconds / 3600) hours"
    case ..<(7 * 24 * 3600 * 2): return "\(seconds / 86400) days"
    case ..<(30 * 24 * 3600 * 3): return "\(seconds / (7 * 86400)) weeks"
    case ..<(365 * 24 * 3600 * 2): return "\(seconds / (30 * 86400)) months"
    default: return "\(seconds / (365 * 86400)) years"
    }
}
