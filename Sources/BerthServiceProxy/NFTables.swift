import BerthOS

#if canImport(Glibc)
import Glibc
#endif

/// nft(8), as kube-proxy's nftables mode runs it (knftables): a transaction is one `nft -f` of text,
/// applied by the kernel all at once or not at all.
public struct NFTables: Sendable {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// The program and the arguments before nft's own: `[/usr/sbin/nft]`, or a wrapper that runs it
    /// elsewhere (`ip netns exec NAME nft`, as the tests do).
    public let command: [String]

    /// nft from PATH (or the usual sbin directories); nil when the machine has none.
    public init?() {
        guard let path = ChildProcess.lookup("nft", path: "/usr/sbin:/sbin:/usr/bin:/bin") else { return nil }
        command = [path]
    }

    public init(command: [String]) { self.command = command }

    /// Applies `transaction`; a failure carries nft's own words (the line, marked where it refused).
    public func apply(_ transaction: String) throws(Failure) {
        try run(["-f", "/dev/stdin"], input: Array(transaction.utf8))
    }

    /// Whether the table `name` (in the ip family) has the chain `chain` — the proxy's check that nobody
    /// deleted its table between syncs (kube-proxy's canary).
    public func hasChain(table name: String, chain: String) -> Bool {
        (try? run(["list", "chain", "ip", name, chain], input: [])) != nil
    }

    /// The table `name` (ip family) as `nft list table` prints it.
    public func listTable(_ name: String) throws(Failure) -> String {
        try run(["list", "table", "ip", name], input: [])
    }

    /// Deletes the table `name` if there is one.
    public func deleteTable(_ name: String) throws(Failure) {
        try apply("add table ip \(name)\ndelete table ip \(name)\n")
    }

    @discardableResult
    func run(_ arguments: [String], input: [UInt8]) throws(Failure) -> String {
        let output: ChildProcess.Output
        do {
            output = try ChildProcess.run(
                command[0], arguments: command + arguments, environment: ["PATH=/usr/sbin:/sbin:/usr/bin:/bin"],
                input: input, timeout: 60, onTimeout: { kill($0, SIGKILL) })
        } catch {
            throw Failure(description: "running \(command[0]): \(error)")
        }
        guard case .exited(0) = output.status else {
            var words = Substring(String(decoding: output.stderr, as: UTF8.self))
            while words.last?.isWhitespace == true { words = words.dropLast() }
            throw Failure(description: "nft \(arguments.joined(separator: " ")) failed (\(output.status)): \(words)")
        }
        return String(decoding: output.stdout, as: UTF8.self)
    }
}
