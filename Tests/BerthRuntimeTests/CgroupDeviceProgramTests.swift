import Testing
@testable import BerthRuntime

/// A tiny interpreter for the instructions CgroupDeviceProgram emits, so the filter's decisions are
/// checked without loading it into a kernel.
private func run(_ program: [UInt64], type: UInt32, access: UInt32, major: UInt32, minor: UInt32) -> Int? {
    var registers = [UInt64](repeating: 0, count: 11)
    let context = [type | access << 16, major, minor]
    var pc = 0
    while pc < program.count {
        let insn = program[pc]
        let code = UInt8(insn & 0xff), dst = Int((insn >> 8) & 0xf), src = Int((insn >> 12) & 0xf)
        let off = Int(Int16(bitPattern: UInt16((insn >> 16) & 0xffff)))
        let imm = Int32(bitPattern: UInt32(insn >> 32))
        pc += 1
        switch code {
        case 0x61: registers[dst] = UInt64(context[off / 4])
        case 0x54: registers[dst] = UInt64(UInt32(truncatingIfNeeded: registers[dst]) & UInt32(bitPattern: imm))
        case 0x74: registers[dst] = UInt64(UInt32(truncatingIfNeeded: registers[dst]) >> UInt32(imm))
        case 0xbc: registers[dst] = UInt64(UInt32(truncatingIfNeeded: registers[src]))
        case 0xb7: registers[dst] = UInt64(bitPattern: Int64(imm))
        case 0x55: if registers[dst] != UInt64(bitPattern: Int64(imm)) { pc += off }
        case 0x5d: if registers[dst] != registers[src] { pc += off }
        case 0x95: return Int(registers[0])
        default: return nil
        }
    }
    return nil
}

@Suite struct CgroupDeviceProgramTests {
    let char: UInt32 = 2, block: UInt32 = 1
    let read: UInt32 = 2, write: UInt32 = 4, mknod: UInt32 = 1

    @Test func denyAllThenAllowsLastMatchWins() throws {
        let rules =
            Cgroups.deviceRules([Spec.DeviceRule(allow: false, access: "rwm")], devices: nil)
            + [Spec.DeviceRule(allow: false, type: "c", major: 1, minor: 9, access: "w")]
        let program = try CgroupDeviceProgram(rules).instructions
        #expect(run(program, type: char, access: read | write, major: 1, minor: 3) == 1)  // /dev/null
        #expect(run(program, type: char, access: read, major: 136, minor: 7) == 1)  // /dev/pts/7
        #expect(run(program, type: block, access: read, major: 8, minor: 0) == 0)  // /dev/sda: denied
        #expect(run(program, type: block, access: mknod, major: 8, minor: 0) == 1)  // "b *:* m"
        #expect(run(program, type: char, access: read, major: 1, minor: 9) == 1)  // urandom read
        #expect(run(program, type: char, access: write, major: 1, minor: 9) == 0)  // the later deny of w
        #expect(run(program, type: char, access: read | write, major: 10, minor: 229) == 0)
    }

    @Test func noRulesAllowsEverything() throws {
        let program = try CgroupDeviceProgram([]).instructions
        #expect(program.count == 8)
        #expect(run(program, type: block, access: read, major: 8, minor: 0) == 1)
    }

    @Test func invalidRulesNameTheirField() {
        #expect(
            invalidField { _ = try CgroupDeviceProgram([Spec.DeviceRule(allow: true, type: "q")]) }
                == "linux.resources.devices[0].type")
    }
}
