#if canImport(Glibc)
import Glibc
#endif
import BerthJSON
import BerthOCI
import BerthOS

extension Engine {
    /// Changes a container's cgroup limits in place (docker's `update`, the CRI's
    /// UpdateContainerResources): the new values through the runtime's `update --resources` while it
    /// runs, and into its record so that the next start applies them too.
    public func update(_ reference: String, resources: ContainerConfiguration.Resources) throws(EngineError) {
        try locked(container: reference) { id throws(EngineError) in
            var record = try lookup(id)
            var changed = record.configuration
            changed.resources = resources
            let host = SpecBuilder.machine
            var spec = Spec.Resources()
            spec.memory = try ContainerResources.memory(resources, host: host)
            spec.cpu = try ContainerResources.cpu(resources, host: host)
            spec.pids = ContainerResources.pids(resources)
            spec.hugepageLimits = ContainerResources.hugepages(resources)
            spec.unified = resources.unified
            if record.state.running {
                let file = layout.monitorState(record.id) + "/update-resources.json"
                do {
                    try FileSystem.makeDirectories(layout.monitorState(record.id), mode: 0o700)
                    try FileSystem.writeAtomically(file, try JSONTreeEncoder.encode(spec), mode: 0o600, durable: false)
                } catch { throw .other("writing the resources of \(record.shortID): \(error)") }
                defer { unlink(file) }
                try OCIRuntime(name: record.runtime, layout: layout, named: self.configuration.runtimes).run(
                    ["update", "--resources", file, record.id], operation: "update")
            }
            record.configuration = changed
            try save(record)
            events.container("update", record)
        }
    }
}
