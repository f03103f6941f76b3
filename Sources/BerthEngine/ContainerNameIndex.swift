#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// The containers' names, as docker's name registry: `names/NAME` is a symlink to the ID of the
/// container that holds the name. A create or rename claims a name with one symlink(2) under the engine
/// lock, and a lookup by name reads one link — where both once read every container's record, work
/// that grew with the number of containers and was done for each create (for each pod a node starts).
///
/// The index can be behind the records, never ahead in a way that matters: a link whose container's
/// record is gone (a crash between removing the record and the link) is stale and taken over; an
/// engine from before the index has none, and the first create builds it from the records.
struct ContainerNameIndex {
    let layout: EngineLayout

    var directory: String { layout.root + "/names" }

    /// The ID of the container holding `name`, if its record is there and still has that name.
    func holder(of name: String) -> String? {
        guard let id = readLink(name), let record = RecordFile.read(ContainerRecord.self, layout.record(id)),
            record.name == name
        else { return nil }
        return id
    }

    /// Every name claimed (for a generated name to avoid).
    func names() -> Set<String> {
        Set((try? FileSystem.listDirectory(directory)) ?? [])
    }

    /// Builds the index from `records` unless it exists; under the engine lock. Made beside and renamed
    /// into place, so that a crash midway leaves no index (built again) rather than half of one.
    func ensureBuilt(records: () -> [ContainerRecord]) throws(EngineError) {
        guard !FileSystem.exists(directory) else { return }
        let building = directory + ".building"
        do throws(SystemCallError) {
            try? FileSystem.removeTree(building)
            try FileSystem.makeDirectories(building, mode: 0o700)
            for record in records() {
                let link = building + "/" + record.name
                if symlink(record.id, link) != 0 && errno != EEXIST {
                    throw SystemCallError(call: "symlink", errno: errno, subject: link)
                }
            }
            guard rename(building, directory) == 0 else {
                throw SystemCallError(call: "rename", errno: errno, subject: directory)
            }
        } catch { throw .system(error, context: "building the container name index") }
    }

    /// Claims `name` for `id`; under the engine lock. A live holder is docker's name conflict.
    func claim(_ name: String, for id: String) throws(EngineError) {
        let path = directory + "/" + name
        for _ in 0..<2 {
            if symlink(id, path) == 0 { return }
            let error = errno
            guard error == EEXIST else {
                throw .system(SystemCallError(call: "symlink", errno: error, subject: path), context: "claiming a name")
            }
            if let holder = holder(of: name) {
                if holder == id { return }
                throw .nameInUse(name: name, by: holder)
            }
            unlink(path)
        }
        throw .conflict("the container name \(name) could not be claimed")
    }

    /// Gives `name` up if `id` holds it; under the engine lock (a create may be claiming it).
    func release(_ name: String, of id: String) {
        if readLink(name) == id { unlink(directory + "/" + name) }
    }

    private func readLink(_ name: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        let count = readlink(directory + "/" + name, &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
