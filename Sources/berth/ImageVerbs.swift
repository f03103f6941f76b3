import ArgumentParser

/// Image verbs (pull, images, rmi, push, save, load, image …), owned by the image layer.
let imageVerbs: [any ParsableCommand.Type] = []
