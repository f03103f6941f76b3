import BerthCRIProtocol
import BerthImage
import BerthOS
import GRPCCore

/// The CRI's ImageService over the engine's image store: images listed by ID with their names, pulled
/// with the kubelet's credentials, removed with all their names, the store's filesystem measured.
public struct ImageServiceHandler: Runtime_V1_ImageService.SimpleServiceProtocol {
    let runtime: CRIRuntime

    public init(runtime: CRIRuntime) { self.runtime = runtime }

    public func listImages(request: Runtime_V1_ListImagesRequest, context: ServerContext) async throws
        -> Runtime_V1_ListImagesResponse
    {
        let store = runtime.engine.images.store
        var images = CRIImage.all(store)
        if request.hasFilter && !request.filter.image.image.isEmpty {
            let wanted = CRIImage.find(request.filter.image.image, in: store)?.id
            images = images.filter { $0.id == wanted }
        }
        var response = Runtime_V1_ListImagesResponse()
        response.images = images.map { image in
            var message = image.message
            let user = runtime.imageUser(image)
            if let uid = user.uid { message.uid.value = uid }
            message.username = user.name
            return message
        }
        return response
    }

    public func imageStatus(request: Runtime_V1_ImageStatusRequest, context: ServerContext) async throws
        -> Runtime_V1_ImageStatusResponse
    {
        guard request.hasImage, !request.image.image.isEmpty else { throw CRIError.invalid("image is required") }
        var response = Runtime_V1_ImageStatusResponse()
        // An absent image is an empty answer, not an error: the kubelet pulls when it sees none.
        guard let image = CRIImage.find(request.image.image, in: runtime.engine.images.store) else { return response }
        response.image = image.message
        let user = runtime.imageUser(image)
        if let uid = user.uid { response.image.uid.value = uid }
        response.image.username = user.name
        response.image.spec = request.image
        if request.verbose {
            response.info = ["info": "{\"names\":[\(image.records.map { "\"\($0.name)\"" }.joined(separator: ","))]}"]
        }
        return response
    }

    public func pullImage(request: Runtime_V1_PullImageRequest, context: ServerContext) async throws
        -> Runtime_V1_PullImageResponse
    {
        guard request.hasImage, !request.image.image.isEmpty else { throw CRIError.invalid("image is required") }
        var response = Runtime_V1_PullImageResponse()
        response.imageRef = try await runtime.pullImage(request.image.image, auth: request.hasAuth ? request.auth : nil)
        return response
    }

    public func removeImage(request: Runtime_V1_RemoveImageRequest, context: ServerContext) async throws
        -> Runtime_V1_RemoveImageResponse
    {
        guard request.hasImage, !request.image.image.isEmpty else { throw CRIError.invalid("image is required") }
        try await runtime.removeImage(request.image.image)
        return Runtime_V1_RemoveImageResponse()
    }

    public func imageFsInfo(request: Runtime_V1_ImageFsInfoRequest, context: ServerContext) async throws
        -> Runtime_V1_ImageFsInfoResponse
    {
        let runtime = self.runtime
        let usage = await BlockingThread.run(name: "cri-imagefs") {
            () -> (Runtime_V1_FilesystemUsage, Runtime_V1_FilesystemUsage) in runtime.imageFilesystemUsage()
        }
        var response = Runtime_V1_ImageFsInfoResponse()
        response.imageFilesystems = [usage.0]
        response.containerFilesystems = [usage.1]
        return response
    }

    public func streamImages(
        request: Runtime_V1_StreamImagesRequest, response: RPCWriter<Runtime_V1_StreamImagesResponse>,
        context: ServerContext
    ) async throws { throw CRIError.unimplemented("StreamImages") }
}
