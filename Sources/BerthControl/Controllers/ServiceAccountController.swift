import BerthAPI
import Foundation
import Logging

/// Keeps a "default" ServiceAccount in every active namespace (upstream's serviceaccounts-controller).
/// The API creates it with the namespace; this loop puts it back when it is deleted.
struct ServiceAccountController: ControlLoop {
    let name = "serviceaccount-controller"
    static let accounts = ["default"]
    let client: LocalClient
    let namespaces: UntypedInformer
    let serviceAccounts: UntypedInformer
    let queue = WorkQueue(name: "serviceaccount")
    let logger: Logger

    init(_ ctx: ControllerContext) {
        client = ctx.localClient("serviceaccount-controller")
        namespaces = ctx.informers.informer(Registry.namespaces)
        serviceAccounts = ctx.informers.informer(Registry.serviceAccounts)
        logger = ctx.logger
        let queue = self.queue
        namespaces.onChange { e in
            if case .deleted = e { return }
            guard let ns = e.object["metadata"]["name"].string else { return }
            Task { await queue.add(ns) }
        }
        serviceAccounts.onChange { e in
            guard case .deleted(let sa) = e, Self.accounts.contains(sa["metadata"]["name"].string ?? ""),
                let ns = sa["metadata"]["namespace"].string
            else { return }
            Task { await queue.add(ns) }
        }
    }

    func run() async {
        await runWorkers(
            queue, count: 2, sync: sync,
            onError: { key, error in
                logger.debug("serviceaccount sync failed", metadata: ["namespace": "\(key)", "error": "\(error)"])
            })
    }

    func sync(_ ns: String) async throws {
        guard let namespace = namespaces.get(ns), !Objects.isTerminating(namespace),
            (namespace["status"]["phase"].string ?? "Active") == "Active"
        else { return }
        for account in Self.accounts where serviceAccounts.get(namespace: ns, name: account) == nil {
            // The cache may lag behind a create: the store decides.
            if try await client.get(Registry.serviceAccounts, namespace: ns, name: account) != nil { continue }
            do {
                try await client.create(
                    Registry.serviceAccounts, ["metadata": ["name": .string(account), "namespace": .string(ns)]])
            } catch let e as APIError where e.code == 409 || e.code == 403 || e.code == 404 {
                // Exists already, or the namespace is terminating or gone.
            }
        }
    }
}

/// Fills legacy service-account token Secrets (upstream's token controller): a Secret of type
/// kubernetes.io/service-account-token naming a ServiceAccount in its
/// `kubernetes.io/service-account.name` annotation gets data `token` (a JWT the API server accepts as
/// that account), `ca.crt` and `namespace`, and the annotation `kubernetes.io/service-account.uid`.
/// A token Secret whose ServiceAccount does not exist (or is a different one, by uid) is deleted — so
/// deleting a ServiceAccount deletes its tokens.
struct TokenController: ControlLoop {
    let name = "serviceaccount-token-controller"
    static let tokenType = "kubernetes.io/service-account-token"
    static let nameAnnotation = "kubernetes.io/service-account.name"
    static let uidAnnotation = "kubernetes.io/service-account.uid"
    static let accountIndex = "token-serviceaccount"
    let client: LocalClient
    let secrets: UntypedInformer
    let queue = WorkQueue(name: "serviceaccount-token")
    let signer: ServiceAccountTokenSigner
    let caPEM: String
    let logger: Logger

    init(_ ctx: ControllerContext) {
        client = ctx.localClient("serviceaccount-token-controller")
        secrets = ctx.informers.informer(Registry.secrets)
        let serviceAccounts = ctx.informers.informer(Registry.serviceAccounts)
        guard let signer = ctx.facts.serviceAccountSigner else {
            preconditionFailure("the token controller needs the service-account signing key")
        }
        self.signer = signer
        caPEM = ctx.facts.caPEM
        logger = ctx.logger
        secrets.addIndex(Self.accountIndex) { s in
            guard s["type"].string == Self.tokenType, let ns = s["metadata"]["namespace"].string,
                let sa = s["metadata"]["annotations"][Self.nameAnnotation].string
            else { return [] }
            return [Objects.key(namespace: ns, name: sa)]
        }
        let queue = self.queue, secrets = self.secrets
        secrets.onChange { e in
            if case .deleted = e { return }
            guard e.object["type"].string == Self.tokenType else { return }
            Task { await queue.add(UntypedInformer.key(e.object)) }
        }
        serviceAccounts.onChange { e in
            // A deleted (or replaced) account: its tokens go.
            guard let ns = e.object["metadata"]["namespace"].string, let name = e.object["metadata"]["name"].string
            else { return }
            if case .updated = e { return }
            let keys = secrets.byIndex(Self.accountIndex, Objects.key(namespace: ns, name: name)).map(
                UntypedInformer.key)
            if !keys.isEmpty { Task { for k in keys { await queue.add(k) } } }
        }
    }

    func run() async {
        await runWorkers(
            queue, count: 2, sync: sync,
            onError: { key, error in
                logger.debug("token sync failed", metadata: ["secret": "\(key)", "error": "\(error)"])
            })
    }

    func sync(_ key: String) async throws {
        let (ns, name) = Objects.split(key)
        guard let secret = try await client.get(Registry.secrets, namespace: ns, name: name),
            secret["type"].string == Self.tokenType, !Objects.isTerminating(secret),
            let account = secret["metadata"]["annotations"][Self.nameAnnotation].string
        else { return }
        let wantUID = secret["metadata"]["annotations"][Self.uidAnnotation].string ?? ""
        let sa = try await client.get(Registry.serviceAccounts, namespace: ns, name: account)
        guard let sa, let saUID = sa["metadata"]["uid"].string, wantUID.isEmpty || wantUID == saUID else {
            do {
                try await client.delete(
                    Registry.secrets, namespace: ns, name: name, uid: secret["metadata"]["uid"].string)
                logger.debug("deleted token of a missing service account", metadata: ["secret": "\(key)"])
            } catch let e as APIError where e.code == 404 || e.code == 409 {}
            return
        }
        func b64(_ s: String) -> JSON { .string(Data(s.utf8).base64EncodedString()) }
        var updated = secret
        if (secret["data"]["token"].string ?? "").isEmpty {
            let token = try signer.sign(
                .init(namespace: ns, secretName: name, serviceAccountName: account, serviceAccountUID: saUID))
            updated["data"]["token"] = b64(token)
        }
        updated["data"]["ca.crt"] = b64(caPEM)
        updated["data"]["namespace"] = b64(ns)
        updated["metadata"]["annotations"][Self.uidAnnotation] = .string(saUID)
        if updated == secret { return }
        try await client.update(Registry.secrets, updated)  // a conflict comes back through the queue
    }
}
