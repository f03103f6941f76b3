import ArgumentParser

/// Image verbs (pull, images, rmi, push, save, load, image …), owned by the image layer.
/// Each verb lives in its own Image*.swift file.
let imageVerbs: [any ParsableCommand.Type] = [
    ImagePull.self, ImageList.self, ImageRemove.self, ImagePush.self, ImageSave.self, ImageLoad.self, ImageTag.self,
    ImageGroup.self,
]

/// `berth image …`: the same verbs under one noun, as docker has them, plus inspect/prune/import/check.
struct ImageGroup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image", abstract: "Manage images.",
        subcommands: [
            ImageLs.self, ImagePull.self, ImagePush.self, ImageRm.self, ImageInspect.self, ImagePrune.self,
            ImageImport.self, ImageCheck.self, ImageSave.self, ImageLoad.self, ImageTag.self, ImageUnpack.self,
        ])
}
