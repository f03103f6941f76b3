import BerthKube
import Foundation

/// The kubelet's eviction thresholds (`--eviction-hard memory.available<100Mi,nodefs.available<10%`):
/// a signal, and the least of it the node must keep, as a quantity or a percentage of its capacity.
public struct EvictionThreshold: Sendable, Equatable {
    public enum Signal: String, Sendable, CaseIterable {
        case memoryAvailable = "memory.available"
        case nodefsAvailable = "nodefs.available"
        case nodefsInodesFree = "nodefs.inodesFree"
        case imagefsAvailable = "imagefs.available"
        case imagefsInodesFree = "imagefs.inodesFree"
        case pidAvailable = "pid.available"

        /// The node condition the signal sets while its threshold is met.
        var condition: CoreV1.NodeConditionType {
            switch self {
            case .memoryAvailable: return .memoryPressure
            case .pidAvailable: return .pidPressure
            default: return .diskPressure
            }
        }
    }

    public enum Amount: Sendable, Equatable {
        case quantity(Int64)
        /// A fraction of the capacity, 0…1.
        case fraction(Double)
    }

    public var signal: Signal
    public var amount: Amount

    /// The threshold in the signal's units for a resource of `capacity`.
    func minimum(capacity: Int64) -> Int64 {
        switch amount {
        case .quantity(let value): return value
        case .fraction(let fraction): return Int64(Double(capacity) * fraction)
        }
    }

    /// The kubelet's defaults, used only when no threshold is given (giving any replaces them all).
    public static let defaults: [EvictionThreshold] = [
        .init(signal: .memoryAvailable, amount: .quantity(100 << 20)),
        .init(signal: .nodefsAvailable, amount: .fraction(0.10)),
        .init(signal: .nodefsInodesFree, amount: .fraction(0.05)),
        .init(signal: .imagefsAvailable, amount: .fraction(0.15)),
    ]

    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    /// `signal<amount` pairs separated by commas, as the kubelet's --eviction-hard takes them.
    public static func parse(_ text: String) throws(ParseError) -> [EvictionThreshold] {
        var thresholds: [EvictionThreshold] = []
        for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            let parts = item.split(separator: "<", maxSplits: 1).map(String.init)
            guard parts.count == 2 else {
                throw ParseError(
                    description: "--eviction-hard: \"\(item)\" is not signal<quantity (only < is supported)")
            }
            guard let signal = Signal(rawValue: parts[0]) else {
                let known = Signal.allCases.map(\.rawValue).joined(separator: ", ")
                throw ParseError(description: "--eviction-hard: unknown signal \"\(parts[0])\" (known: \(known))")
            }
            let value = parts[1]
            if value.hasSuffix("%") {
                guard let percent = Double(value.dropLast()), (0...100).contains(percent) else {
                    throw ParseError(
                        description: "--eviction-hard: \(signal.rawValue): \"\(value)\" is not a percentage")
                }
                thresholds.append(.init(signal: signal, amount: .fraction(percent / 100)))
            } else {
                guard let bytes = Quantity(value).value, bytes >= 0 else {
                    throw ParseError(description: "--eviction-hard: \(signal.rawValue): \"\(value)\" is not a quantity")
                }
                thresholds.append(.init(signal: signal, amount: .quantity(bytes)))
            }
        }
        return thresholds
    }
}
