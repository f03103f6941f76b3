import BerthOS
import Testing

@Suite struct MountInfoTests {
    let table = """
        22 27 0:21 / /proc rw,relatime - proc proc rw
        30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
        31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
        34 30 0:30 /sub /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:14 master:3 - cgroup cgroup rw,cpu,cpuacct
        41 31 0:38 / /tmp/my\\040cgroup\\134x rw - cgroup2 cgroup2 rw
        malformed line without a separator
        50 22 0:40 / /mnt rw - cgroupfs fake rw
        """

    @Test func cgroupEntriesOnlyWithFieldsUnescaped() {
        let entries = MountInfo.cgroupEntries(Array(table.utf8))
        #expect(
            entries.map(\.mountPoint) == ["/sys/fs/cgroup/unified", "/sys/fs/cgroup/cpu,cpuacct", "/tmp/my cgroup\\x"])
        #expect(entries.map(\.fileSystemType) == ["cgroup2", "cgroup", "cgroup2"])
        #expect(entries[1].root == "/sub")
        #expect(entries[1].superOptions == "rw,cpu,cpuacct")
    }

    @Test func everyWellFormedEntry() {
        let entries = MountInfo.entries(Array(table.utf8))
        #expect(entries.count == 6, "the malformed line is skipped")
        #expect(
            entries.first == MountInfo.Entry(root: "/", mountPoint: "/proc", fileSystemType: "proc", superOptions: "rw")
        )
    }
}
