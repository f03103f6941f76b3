import BerthStore
import Foundation

/// API Priority and Fairness (kube-apiserver's APF filter): each request is classified by the
/// FlowSchemas; exempt levels and long-running requests (watches, streams) pass; others take one of
/// their priority level's seats (its share of the server's concurrency) — one, or for a list as many as
/// `WorkEstimate` says its objects weigh —, wait in one of the level's
/// queues when none is free (the queue chosen by shuffle sharding on the request's flow, so one noisy
/// client fills few queues), and are refused with 429 when the queues are full, the level rejects
/// instead of queuing, or the wait passes its limit. Queues are served in turn as seats free (a
/// round-robin stand-in for upstream's virtual-time fair queuing; both give each busy queue an equal
/// share).
///
/// Seats are borrowed between limited levels as upstream's borrowing allows: a level whose own seats
/// are taken borrows an idle one from a level with lendable seats (`lendablePercent` of its nominal
/// ones) and nothing waiting, up to its `borrowingLimitPercent`; the seat goes back to its lender when
/// the request ends. Upstream moves the limits every 10 s from observed demand; lending seat by seat as
/// requests come gives the same bounds without the lag.
actor FlowController: StoreDerivedCache {
    /// What a classified request carries: the response headers upstream sets, and the seat to give back.
    struct Ticket: Sendable {
        var schemaUID: String
        var levelUID: String
        var level: String?
        /// The level whose seats this request borrowed, if it runs on ones not its own.
        var lender: String?
        /// How many seats it holds (`WorkEstimate`).
        var seats = 1
        /// How long after the request ends it still holds them (a write's events to its watchers).
        var additionalLatency = Duration.zero
    }

    /// A collection list, for its work estimate: the store prefix of the resource's objects and the
    /// list's options.
    struct ListRequest: Sendable {
        var keyPrefix: String
        var query: [String: String]
    }

    /// Where a waiting request got a seat, if it did.
    private enum Seat { case own, borrowed(from: String), none }

    private struct Waiter {
        var id: UInt64
        var seats: Int
        var continuation: CheckedContinuation<Seat, Never>
    }

    private struct LevelState {
        var level: FlowControlConfiguration.Level
        /// Its nominal seats.
        var limit: Int
        /// Of those, how many others may borrow, and how many beyond them it may borrow (nil: any).
        var lendable: Int
        var borrowingLimit: Int?
        /// The most seats one request holds (`WorkEstimate.maxSeats`).
        var maxSeats: Int
        /// Seats taken by requests running under this level, its own and borrowed ones.
        var executing = 0
        var borrowed = 0
        /// Requests running under this level.
        var running = 0
        /// Its seats others run on now.
        var lent = 0
        var queues: [[Waiter]]
        var nextQueue = 0
        var dispatched = 0
        var rejected = 0
        var timedOut = 0

        /// Whether `seats` of its own are free. A request wider than the whole level runs alone, as
        /// upstream's queueset lets it once nothing else executes.
        func ownSeatsFree(_ seats: Int) -> Bool {
            (executing - borrowed) + seats <= limit - lent || (seats > limit && executing == 0 && lent == 0)
        }
        func mayBorrow(_ seats: Int) -> Bool { borrowingLimit.map { borrowed + seats <= $0 } ?? true }
        /// Whether it can lend `seats` idle ones: lendable, not in use, and nothing of its own waiting.
        func canLend(_ seats: Int) -> Bool {
            lent + seats <= lendable && (executing - borrowed) + lent + seats <= limit
                && queues.allSatisfy(\.isEmpty)
        }
    }

    /// The server's concurrency shared by the limited levels (kube-apiserver: max-requests-inflight 400
    /// plus max-mutating-requests-inflight 200).
    let serverConcurrency: Int
    /// How long a request may wait in a queue (upstream: a quarter of the one-minute request timeout).
    let waitLimit: Duration
    private var configuration: FlowControlConfiguration?
    private var states: [String: LevelState] = [:]
    private var generation = 0
    var watching = false
    private var nextID: UInt64 = 0

    static let prefix = "/registry/flowcontrol.apiserver.k8s.io/"
    static let apiPrefix = "/apis/flowcontrol.apiserver.k8s.io/"

    init(serverConcurrency: Int = 600, waitLimit: Duration = .seconds(15)) {
        self.serverConcurrency = serverConcurrency
        self.waitLimit = waitLimit
    }

    func invalidate() {
        generation += 1
        configuration = nil
    }

    /// Classifies the request and, unless it is exempt or long-running, holds seats of its level for
    /// it (waiting if the level queues): one, or for `list` its work estimate. Throws 429 when it is
    /// refused.
    func admit(
        _ a: AuthorizationAttributes, longRunning: Bool, list: ListRequest? = nil, watchers: Int? = nil,
        store: any KVStore
    ) async throws -> Ticket? {
        let config = try await current(store)
        guard let match = config.classify(a) else { return nil }
        let (schema, level) = (match.schema, match.level)
        var ticket = Ticket(schemaUID: schema.uid, levelUID: level.uid, level: nil)
        if level.exempt || longRunning { return ticket }
        guard let state = states[level.name] else { return ticket }
        if let list {
            ticket.seats = WorkEstimate.listSeats(
                query: list.query, stored: storedObjects(list.keyPrefix, store: store), maxSeats: state.maxSeats)
        } else if let watchers {
            (ticket.seats, ticket.additionalLatency) = WorkEstimate.mutatingSeats(
                watchers: watchers, maxSeats: state.maxSeats)
        }
        let seats = ticket.seats
        let queued = state.queues.contains { !$0.isEmpty }
        if !queued {
            switch takeSeats(level.name, seats) {
            case .own:
                ticket.level = level.name
                return ticket
            case .borrowed(let lender):
                ticket.level = level.name
                ticket.lender = lender
                return ticket
            case .none: break
            }
        }
        guard !level.reject else {
            states[level.name]?.rejected += 1
            throw Self.tooManyRequests
        }
        let queue = Self.shortestOfHand(
            state.queues.map(\.count), handSize: level.handSize,
            hash: Self.hash(FlowControlConfiguration.flowKey(schema, a)))
        guard state.queues[queue].count < level.queueLengthLimit else {
            states[level.name]?.rejected += 1
            throw Self.tooManyRequests
        }
        nextID += 1
        let id = nextID
        let name = level.name
        // A request whose client went away (or a server stopping) leaves its queue at once, as upstream's
        // when its context ends, rather than holding a place — and the server's shutdown — for the wait limit.
        let seat = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                states[name]?.queues[queue].append(Waiter(id: id, seats: seats, continuation: continuation))
                let limit = waitLimit
                Task { [weak self] in
                    try? await Task.sleep(for: limit)
                    await self?.timeOut(id, level: name, cancelled: false)
                }
            }
        } onCancel: {
            Task { await self.timeOut(id, level: name, cancelled: true) }
        }
        switch seat {
        case .own: break
        case .borrowed(let lender): ticket.lender = lender
        case .none:
            try Task.checkCancellation()
            throw Self.tooManyRequests
        }
        ticket.level = name
        return ticket
    }

    /// `seats` for one more request of `name`: its own if enough are free, else borrowed from the level
    /// with the most idle lendable seats (all from one), else none. Counts them taken.
    private func takeSeats(_ name: String, _ seats: Int) -> Seat {
        guard var state = states[name] else { return .none }
        if state.ownSeatsFree(seats) {
            state.executing += seats
            state.running += 1
            state.dispatched += 1
            states[name] = state
            return .own
        }
        func idle(_ level: String) -> Int { states[level].map { $0.lendable - $0.lent } ?? 0 }
        // The first by name among those with the most to lend (max keeps the first of equals).
        guard state.mayBorrow(seats),
            let lender = states.keys.sorted().filter({ $0 != name && states[$0]?.canLend(seats) == true })
                .max(by: { idle($0) < idle($1) })
        else { return .none }
        states[lender]?.lent += seats
        state.executing += seats
        state.borrowed += seats
        state.running += 1
        state.dispatched += 1
        states[name] = state
        return .borrowed(from: lender)
    }

    /// Upstream's object count tracker: each listed resource's stored objects, counted again once a
    /// minute old (in the background: a list never waits for a count). nil until first counted.
    private var objectCounts: [String: (count: Int, at: ContinuousClock.Instant)] = [:]
    private var counting: Set<String> = []

    private func storedObjects(_ prefix: String, store: any KVStore) -> Int? {
        let known = objectCounts[prefix]
        if known.map({ $0.at.duration(to: .now) > .seconds(60) }) ?? true, counting.insert(prefix).inserted {
            Task { [weak self] in
                let count = try? await store.count(prefix: prefix)
                await self?.counted(prefix, count)
            }
        }
        return known?.count
    }

    private func counted(_ prefix: String, _ count: Int?) {
        counting.remove(prefix)
        if let count { objectCounts[prefix] = (count, .now) }
    }

    /// Counts `prefix` now (tests: the estimate then sees it at once).
    func countObjects(_ prefix: String, store: any KVStore) async throws {
        objectCounts[prefix] = (try await store.count(prefix: prefix), .now)
    }

    /// Gives the ticket's seats back — after its additional latency, when it has one (the caller does not
    /// wait for that).
    func release(_ ticket: Ticket) {
        guard ticket.additionalLatency > .zero else { return finish(ticket) }
        Task {
            try? await Task.sleep(for: ticket.additionalLatency)
            self.finish(ticket)
        }
    }

    /// Gives the seats back (to their lender, if borrowed) and lets queued requests in: the level's own,
    /// then other levels', which may borrow the seats now idle.
    private func finish(_ ticket: Ticket) {
        guard let name = ticket.level, var state = states[name] else { return }
        state.executing -= ticket.seats
        state.running -= 1
        if let lender = ticket.lender {
            state.borrowed -= ticket.seats
            states[lender]?.lent -= ticket.seats
        }
        states[name] = state
        dispatch(name)
        if let lender = ticket.lender { dispatch(lender) }
        for other in states.keys.sorted() where other != name && other != ticket.lender {
            if states[other]?.queues.contains(where: { !$0.isEmpty }) == true { dispatch(other) }
        }
    }

    private func dispatch(_ name: String) {
        while let state = states[name], let q = Self.nextNonEmpty(state.queues, from: state.nextQueue),
            let head = state.queues[q].first
        {
            let seat = takeSeats(name, head.seats)
            if case .none = seat { return }
            guard let waiter = states[name]?.queues[q].removeFirst() else { return }
            states[name]?.nextQueue = (q + 1) % state.queues.count
            waiter.continuation.resume(returning: seat)
        }
    }

    /// Takes waiter `id` out of its queue without a seat: its wait limit passed, or its task was cancelled.
    private func timeOut(_ id: UInt64, level: String, cancelled: Bool) {
        guard var state = states[level] else { return }
        for q in state.queues.indices {
            if let i = state.queues[q].firstIndex(where: { $0.id == id }) {
                let waiter = state.queues[q].remove(at: i)
                if !cancelled { state.timedOut += 1 }
                states[level] = state
                waiter.continuation.resume(returning: .none)
                return
            }
        }
    }

    private static func nextNonEmpty(_ queues: [[Waiter]], from start: Int) -> Int? {
        guard !queues.isEmpty else { return nil }
        for offset in 0..<queues.count {
            let q = (start + offset) % queues.count
            if !queues[q].isEmpty { return q }
        }
        return nil
    }

    /// Shuffle sharding: `handSize` distinct queues dealt from the flow's hash; the shortest of them.
    static func shortestOfHand(_ lengths: [Int], handSize: Int, hash: UInt64) -> Int {
        var deck = Array(lengths.indices)
        var remaining = hash
        var best = deck[0]
        for dealt in 0..<min(handSize, deck.count) {
            let left = deck.count - dealt
            let pick = Int(remaining % UInt64(left))
            remaining /= UInt64(left)
            let card = deck[pick]
            deck.swapAt(pick, left - 1)
            if dealt == 0 || lengths[card] < lengths[best] { best = card }
        }
        return best
    }

    /// FNV-1a, 64 bits.
    static func hash(_ text: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x100_0000_01b3
        }
        return h
    }

    /// Upstream's answer to a request APF refuses (client-go retries after Retry-After).
    static let tooManyRequests = APIError(
        code: 429, reason: "TooManyRequests", message: "Too many requests, please try again later.",
        details: ["retryAfterSeconds": 1])

    // MARK: configuration

    /// Uses `config` until the next change in the store (tests give one directly).
    func load(_ config: FlowControlConfiguration) {
        apply(config)
        configuration = config
    }

    private func current(_ store: any KVStore) async throws -> FlowControlConfiguration {
        if let configuration { return configuration }
        if !watching { try await watchForChanges(store, prefix: Self.prefix) }
        let started = generation
        func objects(_ r: ResourceType) async throws -> [JSON] {
            let page = try await store.list(prefix: r.prefix(namespace: nil), startAfter: nil, limit: 0, revision: nil)
            return page.items.compactMap { try? JSON.parse($0.value) }
        }
        let loaded = FlowControlConfiguration(
            schemas: try await objects(Registry.flowSchemas),
            levels: try await objects(Registry.priorityLevelConfigurations))
        apply(loaded)
        if generation == started { configuration = loaded }
        return loaded
    }

    /// Each limited level's seats: its nominal shares' part of the server's concurrency (at least one).
    private func apply(_ config: FlowControlConfiguration) {
        let total = max(1, config.levels.values.reduce(0) { $0 + $1.shares })
        for level in config.levels.values where !level.exempt {
            let limit = max(1, Int((Double(serverConcurrency * level.shares) / Double(total)).rounded(.up)))
            let lendable = Int((Double(limit * level.lendablePercent) / 100).rounded())
            let borrowingLimit = level.borrowingLimitPercent.map { Int((Double(limit * $0) / 100).rounded()) }
            // A level that rejects has no queues, and upstream no bound of its own for it: the estimator's.
            let maxSeats =
                level.reject
                ? WorkEstimate.maximumSeatsLimit : WorkEstimate.maxSeats(nominal: limit, handSize: level.handSize)
            if var state = states[level.name] {
                if state.queues.count != level.queues {
                    // Waiting requests keep their order, spread over the new queues.
                    let waiting = state.queues.flatMap { $0 }
                    state.queues = Array(repeating: [], count: level.queues)
                    for (i, w) in waiting.enumerated() { state.queues[i % level.queues].append(w) }
                    state.nextQueue = 0
                }
                state.level = level
                state.limit = limit
                state.lendable = lendable
                state.borrowingLimit = borrowingLimit
                state.maxSeats = maxSeats
                states[level.name] = state
            } else {
                states[level.name] = LevelState(
                    level: level, limit: limit, lendable: lendable, borrowingLimit: borrowingLimit,
                    maxSeats: maxSeats, queues: Array(repeating: [], count: level.queues))
            }
            dispatch(level.name)
        }
        // A level that is gone lets its waiting requests through (they were admitted under it).
        for name in states.keys where config.levels[name] == nil || config.levels[name]?.exempt == true {
            if var state = states[name] {
                state.limit = Int.max
                state.lendable = 0
                states[name] = state
                dispatch(name)
            }
        }
    }

    /// /debug/api_priority_and_fairness/dump_priority_levels, in upstream's columns.
    func dumpPriorityLevels() -> String {
        var lines = [
            "PriorityLevelName, ActiveQueues, IsIdle, IsQuiescing, WaitingRequests, ExecutingRequests, DispatchedRequests, RejectedRequests, TimedoutRequests, CancelledRequests"
        ]
        for (name, s) in states.sorted(by: { $0.key < $1.key }) {
            let waiting = s.queues.reduce(0) { $0 + $1.count }
            let active = s.queues.filter { !$0.isEmpty }.count
            lines.append(
                "\(name), \(active), \(waiting == 0 && s.running == 0), false, \(waiting), \(s.running), \(s.dispatched), \(s.rejected), \(s.timedOut), 0"
            )
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
