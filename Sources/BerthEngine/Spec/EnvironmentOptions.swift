extension RunOptionParser {
    /// `-e KEY=value` as given; `-e KEY` takes the caller's value through `lookup`, and stays `KEY` (which
    /// removes the image's KEY) when the caller has none — docker's ValidateEnv.
    public static func parseEnv(_ text: String, lookup: (String) -> String?) throws(EngineError) -> String {
        let key = ContainerProcess.key(text)
        guard !key.isEmpty else {
            throw .invalidArgument(what: "--env", reason: "invalid environment variable: \(text)")
        }
        if text.contains("=") { return text }
        return lookup(key).map { key + "=" + $0 } ?? text
    }

    /// The contents of an `--env-file` (docker's kvfile): one `KEY=value` per line, the value taken
    /// literally (no quotes, no expansion); leading white space ignored; blank lines and lines starting
    /// with `#` skipped; a UTF-8 BOM at the start dropped; `KEY` alone takes the caller's value through
    /// `lookup` and is left out when the caller has none.
    public static func parseEnvFile(_ contents: String, lookup: (String) -> String?) throws(EngineError) -> [String] {
        var result: [String] = []
        for (number, rawLine) in contents.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
            .enumerated()
        {
            var line = Substring(rawLine)
            if number == 0 && line.hasPrefix("\u{FEFF}") { line = line.dropFirst() }
            line = line.drop(while: { $0.isWhitespace })
            if line.isEmpty || line.hasPrefix("#") { continue }
            let key = ContainerProcess.key(String(line))
            guard !key.isEmpty else {
                throw .invalidArgument(what: "--env-file", reason: "no variable name on line '\(line)'")
            }
            guard !key.contains(where: { $0 == " " || $0 == "\t" }) else {
                throw .invalidArgument(what: "--env-file", reason: "variable '\(key)' contains whitespaces")
            }
            if line.contains("=") {
                result.append(String(line))
            } else if let value = lookup(key) {
                result.append(key + "=" + value)
            }
        }
        return result
    }

    /// A `--label-file`: the same lines as an env file, but a key without `=` is dropped (docker reads
    /// label files with no lookup).
    public static func parseLabelFile(_ contents: String) throws(EngineError) -> [String] {
        do {
            return try parseEnvFile(contents) { _ in nil }
        } catch {
            if case .invalidArgument(_, let reason) = error {
                throw .invalidArgument(what: "--label-file", reason: reason)
            }
            throw error
        }
    }

    /// `--label key=value` (or `key` alone, an empty value): the key may not be empty or hold white space.
    public static func parseLabel(_ text: String) throws(EngineError) -> (key: String, value: String) {
        let separator = text.firstIndex(of: "=")
        let rawKey = separator.map { String(text[..<$0]) } ?? text
        let key = String(rawKey.drop(while: { $0 == " " || $0 == "\t" }))
        guard !key.isEmpty else {
            throw .invalidArgument(what: "--label", reason: "invalid label '\(text)': empty name")
        }
        guard !key.contains(where: { $0 == " " || $0 == "\t" }) else {
            throw .invalidArgument(what: "--label", reason: "label '\(key)' contains whitespaces")
        }
        return (rawKey, separator.map { String(text[text.index(after: $0)...]) } ?? "")
    }
}
