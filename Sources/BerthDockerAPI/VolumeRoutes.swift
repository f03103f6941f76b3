import BerthEngine
import NIOHTTP1

/// The volume endpoints: list, create, inspect, remove, prune, over the engine's local volumes.
extension DockerAPI {
    /// A volume as dockerd shows it (`GET /volumes/{name}`).
    struct VolumeResource: Encodable {
        var CreatedAt: String
        var Driver: String
        var Labels: [String: String]
        var Mountpoint: String
        var Name: String
        var Options: [String: String]
        var Scope: String

        init(_ v: VolumeRecord) {
            CreatedAt = v.CreatedAt
            Driver = v.Driver
            Labels = v.Labels
            Mountpoint = v.Mountpoint
            Name = v.Name
            Options = v.Options
            Scope = v.Scope
        }
    }

    struct VolumeList: Encodable {
        var Volumes: [VolumeResource]
        var Warnings: [String]
    }

    func routeVolumes(_ method: HTTPMethod, _ parts: [String], _ request: APIRequest, _ response: ResponseWriter) throws
        -> Bool
    {
        switch (method, parts.count) {
        case (.GET, 0): try listVolumes(request, response)
        case (.POST, 1) where parts[0] == "create": try createVolume(request, response)
        case (.POST, 1) where parts[0] == "prune": try pruneVolumes(request, response)
        case (.GET, 1):
            guard let volume = engine.volumes.inspect(parts[0]) else {
                throw DockerAPIError.notFound("get \(parts[0]): no such volume")
            }
            response.json(VolumeResource(volume))
        case (.DELETE, 1):
            try engine.removeVolume(parts[0], force: request.flag("force"))
            response.send(.noContent)
        default: return false
        }
        return true
    }

    func listVolumes(_ request: APIRequest, _ response: ResponseWriter) throws {
        let filters = try Filters.parse(request.value("filters"))
        try filters.allow(["name", "label", "dangling", "driver"])
        let used = engine.volumesInUse()
        let selected = engine.volumes.list().filter { v in
            filters.matches("name") { v.Name.contains($0) }
                && filters.matches("driver") { $0 == v.Driver }
                && filters.matches("dangling") { ($0 == "true" || $0 == "1") != used.contains(v.Name) }
                && filters.matchesLabel(v.Labels)
        }
        response.json(VolumeList(Volumes: selected.map(VolumeResource.init), Warnings: []))
    }

    struct VolumeCreateRequest: Decodable {
        var Name: String?
        var Driver: String?
        var DriverOpts: [String: String]?
        var Labels: [String: String]?
    }

    func createVolume(_ request: APIRequest, _ response: ResponseWriter) throws {
        let body = try decodeJSON(VolumeCreateRequest.self, request.body)
        if let driver = body.Driver, !driver.isEmpty, driver != "local" {
            throw DockerAPIError.notFound("error looking up volume plugin \(driver): plugin \"\(driver)\" not found")
        }
        if body.DriverOpts?.isEmpty == false { throw unsupported("volume driver options (DriverOpts)") }
        let name = body.Name.flatMap { $0.isEmpty ? nil : $0 }
        let created = try engine.volumes.create(name, labels: body.Labels ?? [:])
        response.json(VolumeResource(created), status: .created)
    }

    /// Before API 1.42 a prune took every unused volume; since, only anonymous ones unless `all=true`.
    func pruneVolumes(_ request: APIRequest, _ response: ResponseWriter) throws {
        let filters = try Filters.parse(request.value("filters"))
        try filters.allow(["label", "label!", "all"])
        let version =
            (try? Self.splitVersion(request.path).version).flatMap { $0.flatMap(APIVersion.init) } ?? APIVersion(
                Self.apiVersion)!
        var all = version < APIVersion("1.42")!
        if let value = filters.values("all").last {
            guard ["true", "1", "false", "0"].contains(value) else {
                throw DockerAPIError.badRequest("invalid filter 'all=\(value)'")
            }
            all = value == "true" || value == "1"
        }
        let removed = engine.pruneVolumes(all: all) { v in
            filters.matchesLabel(v.Labels) && PruneFilters.labelAbsent(filters.values("label!"), v.Labels)
        }
        struct Report: Encodable { var VolumesDeleted: [String]; var SpaceReclaimed: Int64 }
        response.json(
            Report(VolumesDeleted: removed.map(\.volume.Name), SpaceReclaimed: removed.reduce(0) { $0 + $1.bytes }))
    }
}
