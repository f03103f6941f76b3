import ArgumentParser

/// Control-plane verbs (server, …), owned by the API layer.
let clusterVerbs: [any ParsableCommand.Type] = []
