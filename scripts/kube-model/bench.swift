// Decode/encode cost and size of a typical pod, in an optimised build of BerthJSON + BerthKube compiled
// as one module with this file (see bench.sh). Prints one line per measurement.
#if canImport(Glibc)
import Glibc
#endif

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

let path = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "pod.json"
guard let file = fopen(path, "r") else { fatalError("cannot open \(path)") }
var bytes: [UInt8] = []
var buffer = [UInt8](repeating: 0, count: 65536)
while true {
    let n = fread(&buffer, 1, buffer.count, file)
    if n <= 0 { break }
    bytes += buffer[0..<n]
}
fclose(file)

print("MemoryLayout<CoreV1.Pod>.size = \(MemoryLayout<CoreV1.Pod>.size), stride \(MemoryLayout<CoreV1.Pod>.stride)")
print("MemoryLayout<CoreV1.PodSpec>.size = \(MemoryLayout<CoreV1.PodSpec>.size), Container \(MemoryLayout<CoreV1.Container>.size), ObjectMeta \(MemoryLayout<MetaV1.ObjectMeta>.size), PodStatus \(MemoryLayout<CoreV1.PodStatus>.size)")

let rounds = 20_000
var t = now()
var tree = JSON.null
for _ in 0..<rounds { tree = try! JSONParser.parse(bytes) }
let parse = (now() - t) / Double(rounds)
t = now()
var pod = CoreV1.Pod()
for _ in 0..<rounds { pod = try! CoreV1.Pod(kubeJSON: tree) }
let decode = (now() - t) / Double(rounds)
t = now()
var out = JSON.null
for _ in 0..<rounds { out = pod.kubeJSON() }
let encode = (now() - t) / Double(rounds)
t = now()
var text: [UInt8] = []
for _ in 0..<rounds { text = JSONWriter.write(out) }
let write = (now() - t) / Double(rounds)
print("pod JSON \(bytes.count) bytes: parse \(Int(parse * 1e9)) ns, tree→Pod \(Int(decode * 1e9)) ns, Pod→tree \(Int(encode * 1e9)) ns, write \(Int(write * 1e9)) ns (round trip equal: \(out == tree), \(text.count) bytes)")
