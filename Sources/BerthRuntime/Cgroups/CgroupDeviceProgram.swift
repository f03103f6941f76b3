/// cgroup v2 device control: `linux.resources.devices` compiled to a BPF_PROG_TYPE_CGROUP_DEVICE
/// program (the kernel has no devices.allow/deny files on v2), as runc's devicefilter does.
///
/// Semantics match v1's files: rules are checked last to first and the first match decides; a request
/// no rule matches is allowed (a v1 cgroup starts from its parent's allow-all), so configs begin with
/// a deny-all rule, as runc's default spec does.
public struct CgroupDeviceProgram: Sendable, Equatable {
    /// Encoded `struct bpf_insn`s (little-endian: code, dst|src<<4, off, imm).
    public private(set) var instructions: [UInt64] = []

    // Registers (the context is in R1: struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }).
    static let r0: UInt8 = 0, r1: UInt8 = 1, r2: UInt8 = 2, r3: UInt8 = 3, r4: UInt8 = 4, r5: UInt8 = 5
    // Opcodes (linux/bpf_common.h, linux/bpf.h).
    static let loadWord: UInt8 = 0x61  // BPF_LDX | BPF_MEM | BPF_W
    static let and32Imm: UInt8 = 0x54  // BPF_ALU | BPF_AND | BPF_K
    static let rsh32Imm: UInt8 = 0x74  // BPF_ALU | BPF_RSH | BPF_K
    static let mov32Reg: UInt8 = 0xbc  // BPF_ALU | BPF_MOV | BPF_X
    static let mov64Imm: UInt8 = 0xb7  // BPF_ALU64 | BPF_MOV | BPF_K
    static let jneImm: UInt8 = 0x55  // BPF_JMP | BPF_JNE | BPF_K
    static let jneReg: UInt8 = 0x5d  // BPF_JMP | BPF_JNE | BPF_X
    static let exit: UInt8 = 0x95  // BPF_JMP | BPF_EXIT

    static func encode(_ code: UInt8, dst: UInt8 = 0, src: UInt8 = 0, off: Int16 = 0, imm: Int32 = 0) -> UInt64 {
        UInt64(code) | UInt64(dst & 0xf | (src & 0xf) << 4) << 8 | UInt64(UInt16(bitPattern: off)) << 16
            | UInt64(UInt32(bitPattern: imm)) << 32
    }

    /// BPF_DEVCG_DEV_BLOCK / BPF_DEVCG_DEV_CHAR and BPF_DEVCG_ACC_MKNOD / READ / WRITE.
    static func deviceType(_ type: String) -> Int32? { type == "b" ? 1 : type == "c" ? 2 : nil }
    static func accessMask(_ access: String) -> Int32 {
        (access.contains("m") ? 1 : 0) | (access.contains("r") ? 2 : 0) | (access.contains("w") ? 4 : 0)
    }

    public init(_ rules: [Spec.DeviceRule]) throws(RuntimeError) {
        for (i, rule) in rules.enumerated() {
            _ = try CgroupPlan.deviceRuleText(rule, field: "linux.resources.devices[\(i)]")
        }
        typealias P = CgroupDeviceProgram
        instructions = [
            P.encode(P.loadWord, dst: P.r2, src: P.r1, off: 0),  // R2 = access_type
            P.encode(P.and32Imm, dst: P.r2, imm: 0xffff),  // R2 = device type
            P.encode(P.loadWord, dst: P.r3, src: P.r1, off: 0),
            P.encode(P.rsh32Imm, dst: P.r3, imm: 16),  // R3 = requested access
            P.encode(P.loadWord, dst: P.r4, src: P.r1, off: 4),  // R4 = major
            P.encode(P.loadWord, dst: P.r5, src: P.r1, off: 8),  // R5 = minor
        ]
        enum Step { case skipUnlessImm(UInt8, Int32), skipUnlessR1EqualsR3, plain(UInt64) }
        for rule in rules.reversed() {
            // Each check jumps past the end of this rule's block when the request does not match.
            var steps: [Step] = []
            let type = rule.type ?? "a"
            if let deviceType = P.deviceType(type) { steps.append(.skipUnlessImm(P.r2, deviceType)) }
            let mask = P.accessMask(rule.access ?? "rwm")
            if mask != 7 {
                // The requested access must lie within the rule's: (R3 & mask) == R3.
                steps += [
                    .plain(P.encode(P.mov32Reg, dst: P.r1, src: P.r3)),
                    .plain(P.encode(P.and32Imm, dst: P.r1, imm: mask)),
                    .skipUnlessR1EqualsR3,
                ]
            }
            if type != "a", let major = rule.major, major >= 0 {
                steps.append(.skipUnlessImm(P.r4, Int32(truncatingIfNeeded: major)))
            }
            if type != "a", let minor = rule.minor, minor >= 0 {
                steps.append(.skipUnlessImm(P.r5, Int32(truncatingIfNeeded: minor)))
            }
            let unconditional = steps.isEmpty
            steps += [.plain(P.encode(P.mov64Imm, dst: P.r0, imm: rule.allow ? 1 : 0)), .plain(P.encode(P.exit))]
            for (index, step) in steps.enumerated() {
                let skip = Int16(steps.count - index - 1)
                switch step {
                case .plain(let instruction): instructions.append(instruction)
                case .skipUnlessImm(let register, let value):
                    instructions.append(P.encode(P.jneImm, dst: register, off: skip, imm: value))
                case .skipUnlessR1EqualsR3: instructions.append(P.encode(P.jneReg, dst: P.r1, src: P.r3, off: skip))
                }
            }
            // A rule that matches everything decides every request: the verifier rejects anything after
            // it as unreachable, so stop here.
            if unconditional { return }
        }
        // No rule matched: allowed, as in a v1 cgroup that inherits its parent's allow-all.
        instructions += [P.encode(P.mov64Imm, dst: P.r0, imm: 1), P.encode(P.exit)]
    }
}
