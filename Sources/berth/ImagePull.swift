import ArgumentParser
import BerthEngine
import BerthImage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `berth pull [--platform P] REF`: per-layer progress bars on a terminal, plain lines otherwise.
struct ImagePull: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pull", abstract: "Pull an image from a registry.")

    @OptionGroup var options: ImageOptions
    @Option(help: "Platform os/arch[/variant] to pull from a multi-platform image (default: this host).")
    var platform: String?
    @Flag(name: .shortAndLong, help: "Print only the image name.")
    var quiet = false
    @Argument(help: "Image reference, e.g. 127.0.0.1:5000/library/busybox:latest.")
    var reference: String

    func run() async throws {
        let platform: Platform?
        do { platform = try self.platform.map { try Platform(parsing: $0) } } catch {
            throw ValidationError("\(error)")
        }
        let renderer = PullRenderer(terminal: isatty(1) == 1 && !quiet, quiet: quiet)
        let start = ContinuousClock.now
        let record = try await withImageService(options) { service in
            let pulled = try await service.pull(reference, platform: platform, progress: { renderer.handle($0) })
            ImageManagement(service).pulled(pulled)
            return pulled
        }
        renderer.finish()
        if !quiet {
            let elapsed = ContinuousClock.now - start
            let seconds = elapsed.seconds
            print("Digest: \(record.manifestDigest)")
            print("Status: downloaded \(record.name) (\(humanSize(record.size)) in \(String(format2(seconds)))s)")
        }
        print(record.name)
    }
}

func format2(_ value: Double) -> String {
    let scaled = Int((value * 100).rounded())
    return "\(scaled / 100).\(String(scaled % 100).count == 1 ? "0" : "")\(scaled % 100)"
}

/// Draws pull progress: one line per layer, redrawn in place on a TTY.
final class PullRenderer: Sendable {
    struct Layer {
        var id: String; var status: String; var received: Int64; var total: Int64; var started: ContinuousClock.Instant
    }
    private let state = Mutex<(layers: [Layer], drawn: Int, lastDraw: ContinuousClock.Instant)>(([], 0, .now))
    let terminal: Bool
    let quiet: Bool

    init(terminal: Bool, quiet: Bool) {
        self.terminal = terminal
        self.quiet = quiet
    }

    func handle(_ event: PullEvent) {
        if quiet { return }
        state.withLock { s in
            func update(_ digest: Digest, _ change: (inout Layer) -> Void) {
                let id = digest.shortID
                if let i = s.layers.firstIndex(where: { $0.id == id }) {
                    change(&s.layers[i])
                } else {
                    var layer = Layer(id: id, status: "Waiting", received: 0, total: 0, started: .now)
                    change(&layer)
                    s.layers.append(layer)
                }
            }
            var line: String?
            switch event {
            case .resolved(let image, let manifest, let count):
                line = "\(image): resolved to \(manifest) (\(count) layers)"
            case .layerExists(let d):
                update(d) { $0.status = "Already exists" }
                line = "\(d.shortID): Already exists"
            case .layerStarted(let d, let size):
                update(d) {
                    $0.status = "Downloading"; $0.total = size; $0.started = .now
                }
                line = "\(d.shortID): Downloading \(humanSize(size))"
            case .layerProgress(let d, let received, let total):
                update(d) {
                    $0.received = received; $0.total = total
                }
            case .layerDone(let d):
                update(d) {
                    $0.status = "Pull complete"; $0.received = $0.total
                }
                line = "\(d.shortID): Pull complete"
            }
            if terminal {
                let now = ContinuousClock.now
                if case .layerProgress = event, now - s.lastDraw < .milliseconds(100) { return }
                s.lastDraw = now
                if case .resolved = event, let line { print(line) }
                redraw(&s)
            } else if let line {
                print(line)
            }
        }
    }

    private func redraw(_ s: inout (layers: [Layer], drawn: Int, lastDraw: ContinuousClock.Instant)) {
        var out = s.drawn > 0 ? "\u{1b}[\(s.drawn)A" : ""
        for layer in s.layers {
            var text = "\(layer.id): \(layer.status)"
            if layer.status == "Downloading", layer.total > 0 {
                let fraction = Double(layer.received) / Double(layer.total)
                let width = 30
                let filled = min(width, Int(fraction * Double(width)))
                let elapsed = ContinuousClock.now - layer.started
                let seconds = max(0.001, elapsed.seconds)
                let rate = Int64(Double(layer.received) / seconds)
                text +=
                    " [" + String(repeating: "=", count: filled) + ">" + String(repeating: " ", count: width - filled)
                    + "] \(humanSize(layer.received))/\(humanSize(layer.total)) \(humanSize(rate))/s"
            }
            out += "\u{1b}[2K" + text + "\n"
        }
        s.drawn = s.layers.count
        print(out, terminator: "")
        fflush(nil)
    }

    func finish() {}
}
