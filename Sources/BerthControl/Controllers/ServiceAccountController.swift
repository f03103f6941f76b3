import BerthAPI
import BerthKube
import Foundation
import Logging

/// Keeps a "default" ServiceAccount in every active namespace (upstream's serviceaccounts-controller).
/// The API creates it with the namespace; this loop puts it back when it is deleted. Of the accounts it
/// needs only names, so it shares the garbage collector's metadata informer.
struct ServiceAccountController: ControlLoop {
    let name = "serviceaccount-controller"
    static let accounts = ["default"]
    let client: any KubeClient
    let namespaces: Informer<CoreV1.Namespace>
    let serviceAccounts: Informer<MetaV1.PartialObjectMetadata>
    let queue = WorkQueue(name: "serviceaccount")
    let logger: Logger

    init(_ ctx: ControllerContext) {
        client = ctx.client("serviceaccount-controller")
        namespaces = ctx.informers.informer(CoreV1.Namespace.self)
        serviceAccounts = ctx.informers.metadataInformer(.of(CoreV1.ServiceAccount.self))
        logger = ctx.logger
        let queue = self.queue
        namespaces.onChange { event in
            if case .deleted = event { return }
            guard let namespace = event.object.metadata.name else { return }
            Task { await queue.add(namespace) }
        }
        serviceAccounts.onChange { event in
            guard case .deleted(let account) = event, Self.accounts.contains(account.metadata.name ?? ""),
                let namespace = account.metadata.namespace
            else { return }
            Task { await queue.add(namespace) }
        }
    }

    func run() async {
        await runWorkers(
            queue, count: 2, sync: sync,
            onError: { key, error in
                logger.debug("serviceaccount sync failed", metadata: ["namespace": "\(key)", "error": "\(error)"])
            })
    }

    func sync(_ name: String) async throws {
        guard namespaces.get(namespace: nil, name: name)?.takesContent == true else { return }
        for account in Self.accounts where serviceAccounts.get(namespace: name, name: account) == nil {
            // The cache may lag behind a create: an uncached read decides.
            if try await client.getMetadata(.of(CoreV1.ServiceAccount.self), namespace: name, name: account) != nil {
                continue
            }
            do {
                _ = try await client.create(CoreV1.ServiceAccount(metadata: .init(name: account, namespace: name)))
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
    static let nameAnnotation = "kubernetes.io/service-account.name"
    static let uidAnnotation = "kubernetes.io/service-account.uid"
    static let accountIndex = "token-serviceaccount"
    let client: any KubeClient
    let secrets: Informer<CoreV1.Secret>
    let queue = WorkQueue(name: "serviceaccount-token")
    let signer: ServiceAccountTokenSigner
    let caPEM: String
    let logger: Logger

    init(_ ctx: ControllerContext) {
        client = ctx.client("serviceaccount-token-controller")
        secrets = ctx.informers.informer(CoreV1.Secret.self)
        let serviceAccounts = ctx.informers.metadataInformer(.of(CoreV1.ServiceAccount.self))
        guard let signer = ctx.facts.serviceAccountSigner else {
            preconditionFailure("the token controller needs the service-account signing key")
        }
        self.signer = signer
        caPEM = ctx.facts.caPEM
        logger = ctx.logger
        secrets.addIndex(Self.accountIndex) { secret in
            guard secret.type == .serviceAccountToken, let namespace = secret.metadata.namespace,
                let account = secret.metadata.annotations[Self.nameAnnotation]
            else { return [] }
            return [Objects.key(namespace: namespace, name: account)]
        }
        let queue = self.queue, secrets = self.secrets
        secrets.onChange { event in
            if case .deleted = event { return }
            guard event.object.type == .serviceAccountToken else { return }
            let key = event.object.cacheKey
            Task { await queue.add(key) }
        }
        serviceAccounts.onChange { event in
            // A deleted (or replaced) account: its tokens go.
            if case .updated = event { return }
            guard let namespace = event.object.metadata.namespace, let name = event.object.metadata.name else {
                return
            }
            let keys = secrets.byIndex(Self.accountIndex, Objects.key(namespace: namespace, name: name)).map(\.cacheKey)
            if !keys.isEmpty { Task { for key in keys { await queue.add(key) } } }
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
        let (namespace, name) = Objects.split(key)
        guard let secret = try await client.get(CoreV1.Secret.self, namespace: namespace, name: name),
            secret.type == .serviceAccountToken, !secret.isTerminating,
            let account = secret.metadata.annotations[Self.nameAnnotation]
        else { return }
        let wantUID = secret.metadata.annotations[Self.uidAnnotation] ?? ""
        let serviceAccount = try await client.getMetadata(
            .of(CoreV1.ServiceAccount.self), namespace: namespace, name: account)
        guard let accountUID = serviceAccount?.metadata.uid, wantUID.isEmpty || wantUID == accountUID else {
            do {
                try await client.delete(
                    CoreV1.Secret.self, namespace: namespace, name: name, uid: secret.metadata.uid)
                logger.debug("deleted token of a missing service account", metadata: ["secret": "\(key)"])
            } catch let e as APIError where e.code == 404 || e.code == 409 {}
            return
        }
        var updated = secret
        if (secret.data["token"] ?? []).isEmpty {
            let token = try signer.sign(
                .init(
                    namespace: namespace, secretName: name, serviceAccountName: account, serviceAccountUID: accountUID))
            updated.data["token"] = Array(token.utf8)
        }
        updated.data["ca.crt"] = Array(caPEM.utf8)
        updated.data["namespace"] = Array(namespace.utf8)
        updated.metadata.annotations[Self.uidAnnotation] = accountUID
        if updated == secret { return }
        // The resourceVersion is the precondition; a conflict comes back through the queue.
        _ = try await client.update(updated)
    }
}
