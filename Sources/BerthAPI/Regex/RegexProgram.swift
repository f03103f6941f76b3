/// A regular expression compiled to instructions for a Pike VM (Thompson's construction, run as Russ
/// Cox describes for RE2): every thread of the match advances one scalar at a time in lockstep, and two
/// threads at the same instruction are one, so a search costs at most (text length × program size)
/// steps whatever the pattern — there is no backtracking to explode.
struct RegexProgram: Sendable {
    enum Instruction: Sendable {
        case scalar(Unicode.Scalar)
        /// A scalar under `(?i)`, held folded: the text's scalar matches when its fold is this.
        case foldedScalar(Unicode.Scalar)
        case characterClass(RegexCharacterClass)
        case anyScalar
        case anyButNewline
        /// Both ways, the first preferred: its threads outrank the second's (leftmost-first).
        case split(Int, Int)
        case jump(Int)
        case assertion(RegexAssertion)
        case match
    }

    /// Go's limit on a program's size (`regexp/syntax`'s maxSize: 128 MiB of 40-byte instructions);
    /// a larger pattern is "expression too large".
    static let maxSize = (128 << 20) / 40

    private(set) var instructions: [Instruction] = []

    init(_ tree: RegexNode) {
        emit(tree)
        instructions.append(.match)
    }

    /// How many instructions `tree` compiles to (the final match included), computed before compiling
    /// so a pattern too large is refused without building it.
    static func size(of tree: RegexNode) -> Int {
        func size(_ node: RegexNode) -> Int {
            switch node {
            case .empty: return 0
            case .literal, .characterClass, .anyScalar, .assertion: return 1
            case .concatenation(let items): return items.reduce(0) { $0 + size($1) }
            case .alternation(let branches): return branches.reduce(0) { $0 + size($1) } + 2 * (branches.count - 1)
            case .repetition(let body, let low, let high, _, _):
                let one = size(body)
                guard let high else { return low > 0 ? low * one + 1 : one + 2 }
                return low * one + (high - low) * (one + 1)
            }
        }
        return size(tree) + 1
    }

    @discardableResult
    private mutating func append(_ instruction: Instruction) -> Int {
        instructions.append(instruction)
        return instructions.count - 1
    }

    private mutating func emit(_ node: RegexNode) {
        switch node {
        case .empty: break
        case .literal(let s, let foldCase):
            let hasCase = RegexCaseFolding.variants(of: s).contains { $0 != s }
            append(foldCase && hasCase ? .foldedScalar(RegexCaseFolding.fold(s)) : .scalar(s))
        case .characterClass(let cls): append(.characterClass(cls))
        case .anyScalar(let includingNewline): append(includingNewline ? .anyScalar : .anyButNewline)
        case .assertion(let assertion): append(.assertion(assertion))
        case .concatenation(let items): for item in items { emit(item) }
        case .alternation(let branches):
            var exits: [Int] = []
            for branch in branches.dropLast() {
                let split = append(.split(0, 0))
                emit(branch)
                exits.append(append(.jump(0)))
                instructions[split] = .split(split + 1, instructions.count)
            }
            if let last = branches.last { emit(last) }
            for exit in exits { instructions[exit] = .jump(instructions.count) }
        case .repetition(let body, let low, let high, let greedy, _):
            func split(_ loop: Int, _ out: Int) -> Instruction { greedy ? .split(loop, out) : .split(out, loop) }
            guard let high else {
                if low > 0 {
                    // x{n,}: n-1 copies, then `L: x; split(L, next)`.
                    for _ in 0..<low - 1 { emit(body) }
                    let loop = instructions.count
                    emit(body)
                    append(split(loop, instructions.count + 1))
                } else {
                    let loop = append(.split(0, 0))
                    emit(body)
                    append(.jump(loop))
                    instructions[loop] = split(loop + 1, instructions.count)
                }
                return
            }
            for _ in 0..<low { emit(body) }
            // x{n,m}: then m-n optional copies, each of which may end the repetition.
            var optional: [Int] = []
            for _ in 0..<(high - low) {
                optional.append(append(.split(0, 0)))
                emit(body)
            }
            let end = instructions.count
            for at in optional { instructions[at] = split(at + 1, end) }
        }
    }

    // MARK: matching

    private struct Thread {
        var instruction: Int
        /// Where in the text this thread's match began.
        var start: Int
    }

    /// The leftmost-first match at or after `from` (an index into `text`), as the range of scalars it
    /// covers; with `earliest`, any match, found as soon as one is certain (a yes/no question).
    /// Assertions see the whole text, so `^` does not hold at `from` > 0.
    func search(_ text: [Unicode.Scalar], from: Int, earliest: Bool) -> Range<Int>? {
        var current: [Thread] = []
        var next: [Thread] = []
        // The position + 1 at which each instruction was last added: a thread reaching an instruction
        // another thread reached first at this position is redundant (and lower priority) and is dropped.
        var added = [Int](repeating: 0, count: instructions.count)
        var stack: [Int] = []
        var found: Range<Int>?
        var position = from
        while true {
            if found == nil {
                // A new thread for a match starting here, behind every older (leftward) one.
                addThread(&current, Thread(instruction: 0, start: position), at: position, text, &added, &stack)
            }
            if current.isEmpty && found != nil { break }
            let scalar: Unicode.Scalar? = position < text.count ? text[position] : nil
            step: for thread in current {
                switch instructions[thread.instruction] {
                case .match:
                    found = thread.start..<position
                    if earliest { return found }
                    // Threads after this one have lower priority: leftmost-first ignores them.
                    break step
                case let instruction:
                    guard let scalar, accepts(instruction, scalar) else { continue }
                    var advanced = thread
                    advanced.instruction += 1
                    addThread(&next, advanced, at: position + 1, text, &added, &stack)
                }
            }
            guard position < text.count else { break }
            swap(&current, &next)
            next.removeAll(keepingCapacity: true)
            position += 1
        }
        return found
    }

    /// Adds `thread` to `list`, following jumps, splits (preferred way first) and assertions that hold
    /// at `position`, so the list holds only threads waiting on a scalar or at the match.
    private func addThread(
        _ list: inout [Thread], _ thread: Thread, at position: Int, _ text: [Unicode.Scalar], _ added: inout [Int],
        _ stack: inout [Int]
    ) {
        stack.append(thread.instruction)
        while let pc = stack.popLast() {
            guard added[pc] != position + 1 else { continue }
            added[pc] = position + 1
            switch instructions[pc] {
            case .jump(let target): stack.append(target)
            case .split(let preferred, let other):
                stack.append(other)
                stack.append(preferred)
            case .assertion(let assertion):
                if holds(assertion, at: position, text) { stack.append(pc + 1) }
            default:
                list.append(Thread(instruction: pc, start: thread.start))
            }
        }
    }

    private func accepts(_ instruction: Instruction, _ s: Unicode.Scalar) -> Bool {
        switch instruction {
        case .scalar(let expected): return s == expected
        case .foldedScalar(let folded): return RegexCaseFolding.fold(s) == folded
        case .characterClass(let cls): return cls.contains(s)
        case .anyScalar: return true
        case .anyButNewline: return s != "\n"
        default: return false
        }
    }

    private func holds(_ assertion: RegexAssertion, at position: Int, _ text: [Unicode.Scalar]) -> Bool {
        let before: Unicode.Scalar? = position > 0 ? text[position - 1] : nil
        let after: Unicode.Scalar? = position < text.count ? text[position] : nil
        switch assertion {
        case .beginText: return position == 0
        case .endText: return position == text.count
        case .beginLine: return before == nil || before == "\n"
        case .endLine: return after == nil || after == "\n"
        case .wordBoundary, .notWordBoundary:
            let boundary =
                (before.map(RegexCharacterClass.isWordCharacter) ?? false)
                != (after.map(RegexCharacterClass.isWordCharacter) ?? false)
            return boundary == (assertion == .wordBoundary)
        }
    }
}
