/// What one evaluation of a CEL expression has cost so far, in cel-go's units, and the limit past which
/// it is abandoned. A rule's author writes the expression, but any user writes the object it runs over:
/// `self.all(x, self.all(y, self.all(z, true)))` over a long list would otherwise keep the API server
/// busy for as long as that user liked.
///
/// Units follow cel-go's runtime cost (interpreter/runtimecost.go) roughly: one per operator, function
/// call, field selection, variable read and comprehension iteration; string functions a tenth of a unit
/// per scalar they traverse; regular expressions the text's traversal times a quarter of the pattern's
/// length; list operations one per element. Literals are free.
final class CELCostTracker {
    /// Kubernetes' runtime cost limit for one evaluation of one expression: `PerCallLimit` in
    /// k8s.io/apiserver/pkg/apis/cel/config.go, applied to CustomResourceDefinitions' validation rules
    /// and to ValidatingAdmissionPolicy expressions (cel.CostLimit in their programs' options).
    static let perCallLimit = 1_000_000
    /// cel-go's `common.StringTraversalCostFactor`.
    static let stringTraversalFactor = 0.1
    /// cel-go's `common.RegexStringLengthCostFactor`: a guess that a regular expression's every four
    /// characters are one state of its machine.
    static let regexLengthFactor = 0.25

    let limit: Int
    private(set) var cost = 0

    init(limit: Int = CELCostTracker.perCallLimit) {
        self.limit = limit
    }

    /// Adds `units`, abandoning the evaluation once past the limit. Charged before the work is done, so
    /// an operation that would go far past the limit (a long regular-expression match) is never begun.
    func charge(_ units: Int) throws(CELCostLimitExceeded) {
        cost = cost > limit - units ? limit + 1 : cost + units
        if cost > limit { throw CELCostLimitExceeded() }
    }

    /// The cost of traversing a string once.
    static func traversal(_ s: String) -> Int {
        Int((Double(s.unicodeScalars.count) * stringTraversalFactor).rounded(.up))
    }

    /// The cost of matching a regular expression against a string (cel-go's cost of `matches`).
    static func regexMatch(_ text: String, pattern: String) -> Int {
        let textCost = Int(((1 + Double(text.unicodeScalars.count)) * stringTraversalFactor).rounded(.up))
        let patternCost = Int((Double(pattern.unicodeScalars.count) * regexLengthFactor).rounded(.up))
        let (product, overflow) = textCost.multipliedReportingOverflow(by: max(patternCost, 1))
        return overflow ? Int.max : product
    }

    /// The cost of comparing or scanning a value: its traversal for a string, its element count for a
    /// list or map, one otherwise.
    static func size(_ v: JSON) -> Int {
        switch v {
        case .string(let s): return max(traversal(s), 1)
        case .array(let a): return max(a.count, 1)
        case .object(let m): return max(m.count, 1)
        default: return 1
        }
    }
}

/// An evaluation abandoned for cost, in cel-go's words (which kube-apiserver matches on to report it).
struct CELCostLimitExceeded: Error, CustomStringConvertible {
    var description: String { "operation cancelled: actual cost limit exceeded" }
}

/// The cost all of one object's validation rules may take together, shared by every rule of its schema
/// as one validation runs: a rule cheap on its own, on each element of a long list, would add up.
final class CELValidationBudget {
    /// Kubernetes' `RuntimeCELCostBudget` (k8s.io/apiserver/pkg/apis/cel/config.go): the runtime cost
    /// budget of a custom resource's validation.
    static let perObject = 10_000_000

    private(set) var remaining: Int
    /// Spent, or abandoned by a rule past its per-call limit: no further rule runs.
    var isExhausted: Bool { remaining < 0 }

    init(_ total: Int = CELValidationBudget.perObject) {
        remaining = total
    }

    /// Takes `cost`; false (and exhausted from then on) when it is more than what remains.
    func spend(_ cost: Int) -> Bool {
        guard cost <= remaining else {
            remaining = -1
            return false
        }
        remaining -= cost
        return true
    }

    func exhaust() { remaining = -1 }
}
