import ArgumentParser

/// `berth`: docker's verbs for images and containers, and the cluster daemons.
/// Each layer contributes its verbs from its own file (ImageVerbs.swift, ClusterVerbs.swift, …).
struct Berth: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth",
        abstract: "Berth: containers, images and a Kubernetes-compatible control plane in one binary.",
        subcommands: containerVerbs + imageVerbs + clusterVerbs + engineVerbs)
}
