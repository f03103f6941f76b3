@testable import BerthAPI
import BerthStore
import Foundation
import Testing

extension APITests {
    /// flowcontrol.apiserver.k8s.io/v1 and API priority and fairness (issue 16): the bootstrap
    /// configuration, classification, seats, queues and 429s.
    @Suite("FlowControl", .serialized)
    struct FlowControlTests {
        static func level(
            _ name: String, shares: Int, reject: Bool, queues: Int = 1, length: Int = 1, lendable: Int = 0,
            borrowingLimit: Int? = nil
        ) -> JSON {
            var limitResponse: JSON = ["type": "Reject"]
            if !reject {
                limitResponse = [
                    "type": "Queue",
                    "queuing": ["queues": .int(Int64(queues)), "handSize": 1, "queueLengthLimit": .int(Int64(length))],
                ]
            }
            var limited: JSON = [
                "nominalConcurrencyShares": .int(Int64(shares)), "limitResponse": limitResponse,
                "lendablePercent": .int(Int64(lendable)),
            ]
            if let borrowingLimit { limited["borrowingLimitPercent"] = .int(Int64(borrowingLimit)) }
            return [
                "metadata": ["name": .string(name), "uid": .string("uid-" + name)],
                "spec": ["type": "Limited", "limited": limited],
            ]
        }

        static func schema(_ name: String, level: String, precedence: Int, user: String = "*") -> JSON {
            [
                "metadata": ["name": .string(name), "uid": .string("uid-" + name)],
                "spec": [
                    "priorityLevelConfiguration": ["name": .string(level)],
                    "matchingPrecedence": .int(Int64(precedence)),
                    "distinguisherMethod": ["type": "ByUser"],
                    "rules": [
                        [
                            "subjects": [["kind": "User", "user": ["name": .string(user)]]],
                            "resourceRules": [FlowControlBootstrap.allResources],
                        ]
                    ],
                ],
            ]
        }

        static func request(_ user: String) -> AuthorizationAttributes {
            AuthorizationAttributes(
                user: UserInfo(name: user, groups: ["system:authenticated"]), method: "POST",
                path: "/api/v1/namespaces/default/configmaps", query: [:])
        }

        @Test func classificationByPrecedenceThenName() {
            let config = FlowControlConfiguration(
                schemas: [
                    Self.schema("b", level: "l", precedence: 5), Self.schema("a", level: "l", precedence: 5),
                    Self.schema("first", level: "l", precedence: 1, user: "alice"),
                    Self.schema("dangling", level: "missing", precedence: 0),
                ],
                levels: [Self.level("l", shares: 1, reject: true)])
            #expect(config.classify(Self.request("alice"))?.schema.name == "first")
            #expect(config.classify(Self.request("bob"))?.schema.name == "a")
            // The bootstrap schemas: admins exempt, nodes to node-high for their Node, everyone else
            // ends at global-default.
            let bootstrap = FlowControlConfiguration(
                schemas: FlowControlBootstrap.schemas, levels: FlowControlBootstrap.levels)
            let admin = AuthorizationAttributes(
                user: UserInfo(name: "admin", groups: ["system:masters"]), method: "GET", path: "/api/v1/pods",
                query: [:])
            #expect(bootstrap.classify(admin)?.level.name == "exempt")
            let node = AuthorizationAttributes(
                user: UserInfo(name: "system:node:n1", groups: ["system:nodes", "system:authenticated"]),
                method: "PUT", path: "/api/v1/nodes/n1/status", query: [:])
            #expect(bootstrap.classify(node)?.schema.name == "system-node-high")
            #expect(bootstrap.classify(Self.request("carol"))?.schema.name == "global-default")
            let sa = Self.request("system:serviceaccount:kube-system:ctrl")
            #expect(bootstrap.classify(sa)?.schema.name == "kube-system-service-accounts")
        }

        /// `body` with a SQLite store of its own (the controller counts objects in it), closed and removed after.
        static func withStore(_ body: (SQLiteStore) async throws -> Void) async throws {
            let dir = NSTemporaryDirectory() + "berth-apf-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let store = try SQLiteStore(path: dir + "/state.db")
            do { try await body(store) } catch {
                await store.close()
                throw error
            }
            await store.close()
        }

        /// A controller of `seats` seats whose every request goes to one level "l", with one queue of
        /// `queueLength`.
        static func oneLevel(seats: Int, queueLength: Int = 1, waitLimit: Duration = .seconds(30)) async
            -> FlowController
        {
            let flow = FlowController(serverConcurrency: seats, waitLimit: waitLimit)
            await flow.load(
                FlowControlConfiguration(
                    schemas: [Self.schema("all", level: "l", precedence: 10)],
                    levels: [Self.level("l", shares: 1, reject: false, queues: 1, length: queueLength)]))
            return flow
        }

        /// Waits (at most 10 s) until the level dump shows `state` — a request queued, say: the controller
        /// tells nothing when one joins a queue.
        static func waitUntil(_ flow: FlowController, shows state: String) async throws {
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline, !(await flow.dumpPriorityLevels().contains(state)) {
                try await Task.sleep(for: .milliseconds(5))
            }
        }

        @Test func seatsQueueAndRefusal() async throws {
            try await Self.withStore { store in
                // One level, two seats, one queue holding one request.
                let flow = await Self.oneLevel(seats: 2)
                let a = try await flow.admit(Self.request("u"), longRunning: false, store: store)
                let b = try await flow.admit(Self.request("u"), longRunning: false, store: store)
                #expect(a?.level == "l" && b?.level == "l" && a?.schemaUID == "uid-all" && a?.levelUID == "uid-l")
                let queued = Task { try await flow.admit(Self.request("v"), longRunning: false, store: store) }
                // Wait until the third request is in the queue, then the fourth finds the queue full.
                try await Self.waitUntil(flow, shows: "l, 1, false, false, 1, 2")
                await #expect(throws: APIError.self) {
                    _ = try await flow.admit(Self.request("w"), longRunning: false, store: store)
                }
                // Watches and other long-running requests take no seat.
                let watch = try await flow.admit(Self.request("w"), longRunning: true, store: store)
                #expect(watch?.level == nil && watch?.schemaUID == "uid-all")
                // A seat given back lets the queued request in.
                await flow.release(try #require(a))
                let third = try await queued.value
                #expect(third?.level == "l")
                let dump = await flow.dumpPriorityLevels()
                #expect(dump.contains("l, 0, false, false, 0, 2, 3, 1, 0, 0"), "\(dump)")
            }
        }

        /// A queued request whose task is cancelled (its client went away, the server is stopping) leaves
        /// the queue at once with CancellationError, not after the wait limit, and frees its place.
        @Test(.timeLimit(.minutes(1))) func aCancelledWaiterLeavesItsQueueAtOnce() async throws {
            try await Self.withStore { store in
                let flow = await Self.oneLevel(seats: 1, waitLimit: .seconds(3600))
                let holder = try #require(try await flow.admit(Self.request("u"), longRunning: false, store: store))
                let queued = Task { try await flow.admit(Self.request("v"), longRunning: false, store: store) }
                try await Self.waitUntil(flow, shows: "l, 1, false, false, 1, 1")
                queued.cancel()
                await #expect(throws: CancellationError.self) { _ = try await queued.value }
                // Its place is free again (the queue holds one), and it was not counted as timed out.
                let next = Task { try await flow.admit(Self.request("w"), longRunning: false, store: store) }
                await flow.release(holder)
                #expect(try await next.value?.level == "l")
                let dump = await flow.dumpPriorityLevels()
                #expect(dump.contains("l, 0, false, false, 0, 1, 2, 0, 0, 0"), "\(dump)")
            }
        }

        /// Upstream's mutating work estimator and watch tracker: a write holds a seat per ten watchers its
        /// event reaches — over all namespaces, in its namespace, on its object — and keeps them, after
        /// its response, for 5 ms of work per seat spread over the seats it may hold.
        @Test func writesWeighByTheWatchersTheyReach() {
            #expect(WorkEstimate.mutatingSeats(watchers: 0, maxSeats: 10) == (1, .zero))
            #expect(WorkEstimate.mutatingSeats(watchers: 25, maxSeats: 10) == (3, .milliseconds(5)))
            // 100 seats of work on at most 10: ten seats for ten times as long.
            #expect(WorkEstimate.mutatingSeats(watchers: 1000, maxSeats: 10) == (10, .milliseconds(50)))
            let counts = WatchCounts()
            let all = WatchCounts.Index(group: "", resource: "pods")
            let inA = WatchCounts.Index(group: "", resource: "pods", namespace: "a")
            let oneInA = WatchCounts.Index(group: "", resource: "pods", namespace: "a", name: "x")
            for index in [all, inA, inA, oneInA] { counts.started(index) }
            #expect(counts.interested(group: "", resource: "pods", namespace: "a", name: "x") == 4)
            #expect(counts.interested(group: "", resource: "pods", namespace: "a", name: "y") == 3)
            #expect(counts.interested(group: "", resource: "pods", namespace: "b", name: "x") == 1)
            #expect(counts.interested(group: "apps", resource: "pods", namespace: "a", name: "x") == 0)
            counts.ended(inA)
            counts.ended(all)
            #expect(counts.interested(group: "", resource: "pods", namespace: "a", name: "x") == 2)
            #expect(
                Handler.writesToWatchers(
                    AuthorizationAttributes(
                        user: UserInfo(name: "u", groups: []), verb: "create", apiGroup: "",
                        resource: "serviceaccounts",
                        subresource: "token")) == false)
        }

        /// A write with watchers keeps its seats after it ends: a request queued behind it gets in only
        /// once that time has passed.
        @Test(.timeLimit(.minutes(1))) func aWriteHoldsItsSeatsWhileItsEventsGoOut() async throws {
            try await Self.withStore { store in
                let flow = await Self.oneLevel(seats: 1, waitLimit: .seconds(3600))
                // 2,000 watchers: 200 seats of 5 ms on this level's one seat — held for a second after.
                let write = try #require(
                    try await flow.admit(Self.request("u"), longRunning: false, watchers: 2000, store: store))
                #expect(write.seats == 1 && write.additionalLatency == .seconds(1))
                let started = ContinuousClock.now
                await flow.release(write)
                #expect(await flow.dumpPriorityLevels().contains("l, 0, false, false, 0, 1"))
                let next = try await flow.admit(Self.request("v"), longRunning: false, store: store)
                #expect(next?.level == "l")
                #expect(started.duration(to: .now) >= .milliseconds(900))
            }
        }

        /// Upstream's borrowing: a busy level runs on another's idle lendable seats, within its borrowing
        /// limit; the lender keeps what it did not lend and gets the seat back when the request ends.
        @Test func busyLevelsBorrowIdleLendableSeats() async throws {
            try await Self.withStore { store in
                // Eight seats: "lender" and "busy" four each; lender lends half of its; "capped" (same
                // shares as nothing: 0 seats of its own, at least one) may not borrow at all.
                let flow = FlowController(serverConcurrency: 8, waitLimit: .seconds(30))
                await flow.load(
                    FlowControlConfiguration(
                        schemas: [
                            Self.schema("a", level: "busy", precedence: 10, user: "busy"),
                            Self.schema("b", level: "lender", precedence: 10, user: "lender"),
                            Self.schema("c", level: "capped", precedence: 10, user: "capped"),
                        ],
                        levels: [
                            Self.level("busy", shares: 1, reject: true),
                            Self.level("lender", shares: 1, reject: true, lendable: 50),
                            Self.level("capped", shares: 0, reject: true, borrowingLimit: 0),
                        ]))
                var busy: [FlowController.Ticket] = []
                for _ in 0..<6 {
                    busy.append(
                        try #require(try await flow.admit(Self.request("busy"), longRunning: false, store: store)))
                }
                #expect(busy.filter { $0.lender == nil }.count == 4 && busy.filter { $0.lender == "lender" }.count == 2)
                // Half of lender's seats are lent: the seventh busy request is refused, lender still has two.
                await #expect(throws: APIError.self) {
                    _ = try await flow.admit(Self.request("busy"), longRunning: false, store: store)
                }
                let own1 = try await flow.admit(Self.request("lender"), longRunning: false, store: store)
                let own2 = try await flow.admit(Self.request("lender"), longRunning: false, store: store)
                #expect(own1?.lender == nil && own2?.lender == nil)
                await #expect(throws: APIError.self) {
                    _ = try await flow.admit(Self.request("lender"), longRunning: false, store: store)
                }
                // A borrowed seat given back is the lender's again.
                await flow.release(busy.removeLast())
                #expect(try await flow.admit(Self.request("lender"), longRunning: false, store: store)?.lender == nil)
                // A level whose borrowing limit is 0 runs on its own seat only.
                let capped = try await flow.admit(Self.request("capped"), longRunning: false, store: store)
                #expect(capped?.lender == nil)
                await #expect(throws: APIError.self) {
                    _ = try await flow.admit(Self.request("capped"), longRunning: false, store: store)
                }
            }
        }

        /// kube-apiserver's list work estimator: seats by the objects a list touches, bounded per level.
        @Test func listsWeighByTheObjectsTheyTouch() {
            // From the watch cache (any consistent or not-older-than read): every stored object.
            #expect(WorkEstimate.listSeats(query: [:], stored: 250, maxSeats: 10) == 3)
            #expect(
                WorkEstimate.listSeats(query: ["limit": "500", "resourceVersion": "0"], stored: 250, maxSeats: 10) == 3)
            #expect(WorkEstimate.listSeats(query: [:], stored: 5_000, maxSeats: 10) == 10)
            #expect(WorkEstimate.listSeats(query: [:], stored: 5_000, maxSeats: 4) == 4)
            #expect(WorkEstimate.listSeats(query: [:], stored: 0, maxSeats: 10) == 1)
            // Not counted yet: the minimum, as upstream's tracker answers an unknown resource.
            #expect(WorkEstimate.listSeats(query: [:], stored: nil, maxSeats: 10) == 1)
            // From storage (a continuation, an Exact match, a legacy exact read): twice the page, or the
            // page plus everything under a selector.
            #expect(WorkEstimate.listSeats(query: ["limit": "100", "continue": "x"], stored: 900, maxSeats: 10) == 2)
            #expect(
                WorkEstimate.listSeats(
                    query: ["limit": "100", "continue": "x", "labelSelector": "a=b"], stored: 900, maxSeats: 10) == 10)
            #expect(
                WorkEstimate.listSeats(
                    query: ["limit": "50", "resourceVersion": "7", "resourceVersionMatch": "Exact"], stored: 900,
                    maxSeats: 10) == 1)
            #expect(WorkEstimate.fromStorage(["limit": "50", "resourceVersion": "7"]))
            #expect(
                !WorkEstimate.fromStorage([
                    "limit": "50", "resourceVersion": "7", "resourceVersionMatch": "NotOlderThan",
                ]))
            #expect(!WorkEstimate.fromStorage(["limit": "50", "resourceVersion": "0"]))
            // A level's bound: 15 % of its seats, at most seats / handSize, between 1 and 10.
            #expect(WorkEstimate.maxSeats(nominal: 245, handSize: 6) == 10)  // upstream's workload-low at 600
            #expect(WorkEstimate.maxSeats(nominal: 20, handSize: 4) == 3)
            #expect(WorkEstimate.maxSeats(nominal: 20, handSize: 8) == 2)
            #expect(WorkEstimate.maxSeats(nominal: 1, handSize: 8) == 1)
        }

        /// A wide list holds its seats: narrower requests queue behind it until it ends.
        @Test func aWideListHoldsItsSeats() async throws {
            try await Self.withStore { store in
                let prefix = "/registry/core/configmaps/"
                for i in 0..<250 { _ = try await store.create(prefix + "default/c\(i)", value: Array("{}".utf8)) }
                _ = try await store.create("/registry/core/secrets/default/s", value: Array("{}".utf8))
                #expect(try await store.count(prefix: prefix) == 250)
                // Twenty seats, hand size 4: a request holds at most 3.
                let flow = await Self.oneLevel(seats: 20, queueLength: 10)
                let list = FlowController.ListRequest(keyPrefix: prefix, query: [:])
                let listing = AuthorizationAttributes(
                    user: UserInfo(name: "u", groups: []), method: "GET", path: "/api/v1/configmaps", query: [:])
                // The first list of a resource not yet counted holds one seat; once counted, three.
                #expect(try await flow.admit(listing, longRunning: false, list: list, store: store)?.seats == 1)
                try await flow.countObjects(prefix, store: store)
                var held: [FlowController.Ticket] = []
                for _ in 0..<6 {
                    let t = try #require(try await flow.admit(listing, longRunning: false, list: list, store: store))
                    #expect(t.seats == 3)
                    held.append(t)
                }
                // 1 + 18 seats taken: one single-seat request fits, the next waits.
                let single = try #require(try await flow.admit(Self.request("u"), longRunning: false, store: store))
                #expect(single.seats == 1)
                let queued = Task { try await flow.admit(Self.request("v"), longRunning: false, store: store) }
                try await Self.waitUntil(flow, shows: "l, 1, false, false, 1, 8")
                #expect(await flow.dumpPriorityLevels().contains("l, 1, false, false, 1, 8"))
                // A list's three seats given back let it in.
                await flow.release(held.removeLast())
                #expect(try await queued.value?.seats == 1)
            }
        }

        @Test func shuffleShardingPicksTheShortestOfTheHand() {
            let lengths = [5, 0, 3, 2, 9, 1, 7, 4]
            for seed in [UInt64(1), 42, 0xdead_beef, FlowController.hash("some flow")] {
                let chosen = FlowController.shortestOfHand(lengths, handSize: 3, hash: seed)
                #expect(lengths.indices.contains(chosen))
                // The same flow is always dealt the same hand.
                #expect(FlowController.shortestOfHand(lengths, handSize: 3, hash: seed) == chosen)
            }
            // A hand of every queue finds the emptiest.
            #expect(FlowController.shortestOfHand(lengths, handSize: lengths.count, hash: 7) == 1)
        }

        @Test func kubectlSeesTheConfigurationAndRequestsAreLimited() async throws {
            let s = try await TestServer()
            let hook = try TestWebhook()
            defer { hook.stop() }
            let schemas = try s.kubectl("get", "flowschemas")
            expectMentions(
                schemas.stdout,
                ["PRIORITYLEVEL", "MATCHINGPRECEDENCE", "DISTINGUISHERMETHOD", "MISSINGPL", "exempt", "catch-all"])
            let levels = try s.kubectl("get", "prioritylevelconfigurations")
            expectMentions(levels.stdout, ["NOMINALCONCURRENCYSHARES", "QUEUELENGTHLIMIT", "workload-low"])
            try await s.eventually("the Dangling conditions") {
                try s.kubectl("get", "flowschema", "catch-all", "-o", "jsonpath={.status.conditions[0].status}")
                    .stdout == "False"
            }
            // The response names the schema and level (an admin's requests are exempt).
            let exemptUID = try s.kubectl("get", "flowschema", "exempt", "-o", "jsonpath={.metadata.uid}").stdout
            let headers = try run(
                "/usr/bin/curl",
                [
                    "-s", "-D", "-", "-o", "/dev/null", "--cacert", s.dir + "/pki/ca.crt", "-H",
                    "Authorization: Bearer \(s.token)", s.url + "/api/v1/namespaces",
                ])
            #expect(
                headers.stdout.lowercased().contains("x-kubernetes-pf-flowschema-uid: \(exemptUID)"),
                "\(headers.stdout)")

            // A schema of our own ahead of exempt (same precedence, earlier name) sends the admin's
            // configmap writes to a level of three seats that refuses the rest; a slow webhook holds them.
            let made = try s.kubectl(
                "create", "-f", "-",
                stdin: """
                    apiVersion: flowcontrol.apiserver.k8s.io/v1
                    kind: PriorityLevelConfiguration
                    metadata: {name: tiny}
                    spec:
                      type: Limited
                      # No borrowing: the bootstrap levels lend half their seats, which would admit all eight.
                      limited: {nominalConcurrencyShares: 1, borrowingLimitPercent: 0, limitResponse: {type: Reject}}
                    ---
                    apiVersion: flowcontrol.apiserver.k8s.io/v1
                    kind: FlowSchema
                    metadata: {name: aaa-configmaps}
                    spec:
                      priorityLevelConfiguration: {name: tiny}
                      matchingPrecedence: 1
                      distinguisherMethod: {type: ByUser}
                      rules:
                      - subjects: [{kind: User, user: {name: admin}}]
                        resourceRules: [{verbs: [create], apiGroups: [""], resources: [configmaps], namespaces: ["*"]}]
                    ---
                    apiVersion: admissionregistration.k8s.io/v1
                    kind: ValidatingWebhookConfiguration
                    metadata: {name: slow.berth.test}
                    webhooks:
                    - name: slow.berth.test
                      clientConfig: {url: "\(hook.url)/slow", caBundle: \(hook.caBundle)}
                      rules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}]
                      failurePolicy: Ignore
                      timeoutSeconds: 2
                      sideEffects: None
                      admissionReviewVersions: [v1]
                    """)
            #expect(made.ok, "\(made.stderr)")
            // 600 seats × 1 / 246 shares: three.
            // Eight at once (curl processes started together by one shell).
            let burst = try run(
                "/bin/bash",
                [
                    "-c",
                    """
                    for i in 0 1 2 3 4 5 6 7; do
                      curl -s -o /dev/null -w '%{http_code}\\n' --cacert \(s.dir)/pki/ca.crt \\
                        -H 'Authorization: Bearer \(s.token)' -H 'Content-Type: application/json' \\
                        --data-binary "{\\"apiVersion\\":\\"v1\\",\\"kind\\":\\"ConfigMap\\",\\"metadata\\":{\\"name\\":\\"cm-$i\\"}}" \\
                        \(s.url)/api/v1/namespaces/default/configmaps &
                    done
                    wait
                    """,
                ])
            let values = burst.stdout.split(separator: "\n").compactMap { Int($0) }
            #expect(values.filter { $0 == 201 }.count == 3, "\(values)")
            #expect(values.filter { $0 == 429 }.count == 5, "\(values)")
            let dump = try s.curl("GET", "/debug/api_priority_and_fairness/dump_priority_levels")
            #expect(dump.1.string?.contains("tiny, 0, true, false, 0, 0, 3, 5, 0, 0") == true, "\(dump.1)")
            // Other requests are not held up: a read as admin is still exempt.
            #expect(try s.kubectl("get", "configmaps").ok)

            let bad = try s.kubectl(
                "create", "-f", "-",
                stdin: """
                    apiVersion: flowcontrol.apiserver.k8s.io/v1
                    kind: PriorityLevelConfiguration
                    metadata: {name: bad}
                    spec: {type: Limited, limited: {lendablePercent: 101, limitResponse: {type: Queue, queuing: {queues: 4, handSize: 8}}}}
                    ---
                    apiVersion: flowcontrol.apiserver.k8s.io/v1
                    kind: FlowSchema
                    metadata: {name: bad}
                    spec: {priorityLevelConfiguration: {name: nowhere}, matchingPrecedence: 20000, rules: [{subjects: []}]}
                    """)
            expectMentions(
                bad.stderr,
                [
                    "spec.limited.lendablePercent: Invalid value: 101: must be between 0 and 100, inclusive",
                    "spec.limited.limitResponse.queuing.handSize: Invalid value: 8: should not be greater than queues (4)",
                    "spec.matchingPrecedence: Invalid value: 20000: must be between 1 and 10000, inclusive",
                    "spec.rules[0].subjects: Required value",
                ])
            // A schema naming a level that does not exist is dangling.
            #expect(
                try s.kubectl(
                    "create", "-f", "-",
                    stdin:
                        #"{"apiVersion":"flowcontrol.apiserver.k8s.io/v1","kind":"FlowSchema","metadata":{"name":"lost"},"spec":{"priorityLevelConfiguration":{"name":"nowhere"},"rules":[{"subjects":[{"kind":"Group","group":{"name":"x"}}],"nonResourceRules":[{"verbs":["get"],"nonResourceURLs":["/x"]}]}]}}"#
                ).ok)
            try await s.eventually("lost to be dangling") {
                try s.kubectl("get", "flowschema", "lost").stdout.contains("True")
            }
            await s.stop()
        }
    }
}
