/// The options of `create` and `run`, as runc names them.
public struct CreateOptions: Sendable, Equatable {
    public var id: String
    public var bundle: String
    public var pidFile: String?
    public var consoleSocket: String?
    public var noPivot = false
    public var noNewKeyring = false
    public var preserveFds = 0

    public init(id: String, bundle: String) {
        self.id = id
        self.bundle = bundle
    }
}
