/// kube-apiserver's APF work estimate (k8s.io/apiserver's flowcontrol/request): how many of its level's
/// seats a request holds while it runs. A list holds one seat per hundred objects it is expected to
/// touch — all the resource's stored objects when served as from the watch cache, its `limit` (twice,
/// or plus the stored count under a selector) when read from storage — between one and the level's
/// most for one request; a write holds one, and after it a seat per ten watchers its event reaches;
/// everything else holds one. So a client listing thousands of pods queues behind the requests it would
/// crowd out, instead of counting as one.
enum WorkEstimate {
    static let minimumSeats = 1
    static let maximumSeatsLimit = 10
    static let objectsPerSeat = 100.0

    /// A level's most seats for one request, as apf_controller sets them: 15 % of its nominal seats,
    /// at most nominal / handSize, at least one — and, as the estimator caps it, at most ten.
    static func maxSeats(nominal: Int, handSize: Int) -> Int {
        let relative = min((Double(nominal) * 0.15).rounded(.up), Double(nominal / max(1, handSize)))
        return min(max(1, Int(relative)), maximumSeatsLimit)
    }

    /// The seats of a collection list whose resource holds `stored` objects (nil: not counted yet, which
    /// upstream's tracker answers with the minimum). `query` is the list's options.
    static func listSeats(query: [String: String], stored: Int?, maxSeats: Int) -> Int {
        guard let stored else { return minimumSeats }
        let limit = Int(query["limit"] ?? "").flatMap { $0 > 0 && $0 < stored ? $0 : nil } ?? stored
        let objects: Int
        if !fromStorage(query) {
            objects = stored
        } else if !(query["fieldSelector"] ?? "").isEmpty || !(query["labelSelector"] ?? "").isEmpty {
            objects = stored + limit
        } else {
            objects = 2 * limit
        }
        let seats = Int((Double(objects) / objectsPerSeat).rounded(.up))
        return min(max(seats, minimumSeats), max(maxSeats, minimumSeats))
    }

    /// upstream's mutating work estimator: a write holds, after its response, one seat per ten watchers its
    /// event will reach (capped at the level's most for one request) for 5 ms of work per seat so spread
    /// over the capped seats — the work of sending it to them. No watchers: one seat, nothing after.
    static func mutatingSeats(watchers: Int, maxSeats: Int) -> (seats: Int, additionalLatency: Duration) {
        let finalSeats = Int((Double(watchers) / watchesPerSeat).rounded(.up))
        guard finalSeats > 0 else { return (minimumSeats, .zero) }
        let capped = min(finalSeats, max(maxSeats, minimumSeats))
        return (max(capped, minimumSeats), eventAdditionalDuration * finalSeats / capped)
    }
    static let watchesPerSeat = 10.0
    static let eventAdditionalDuration = Duration.milliseconds(5)

    /// Whether kube-apiserver 1.32 reads the list from etcd rather than its watch cache (consistent
    /// reads come from the cache there): a continuation, or a resourceVersionMatch the cache cannot
    /// answer (Exact, or a legacy exact read: a limit and a resourceVersion other than 0 without a match).
    static func fromStorage(_ query: [String: String]) -> Bool {
        let version = query["resourceVersion"] ?? "", match = query["resourceVersionMatch"] ?? ""
        let limit = Int(query["limit"] ?? "") ?? 0
        let legacyExact = limit > 0 && match.isEmpty && !version.isEmpty && version != "0"
        return !(query["continue"] ?? "").isEmpty || (!match.isEmpty && match != "NotOlderThan") || legacyExact
    }
}
