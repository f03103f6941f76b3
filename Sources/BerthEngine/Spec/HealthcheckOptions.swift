extension RunOptionParser {
    /// The `--health-*` options as docker's CLI combines them: `--no-healthcheck` alone disables the
    /// image's check (`["NONE"]`); otherwise any of the others makes a check whose command is
    /// `["CMD-SHELL", cmd]` (or empty, to keep the image's), with durations in Go's syntax (`30s`) and
    /// none negative. nil when no option was given (the image's check applies).
    public static func parseHealthcheck(
        command: String? = nil, interval: String? = nil, timeout: String? = nil,
        startPeriod: String? = nil, startInterval: String? = nil, retries: Int? = nil,
        disabled: Bool = false
    ) throws(EngineError) -> ContainerConfiguration.Healthcheck? {
        func duration(_ text: String?, _ option: String) throws(EngineError) -> Int64 {
            guard let text else { return 0 }
            let value = try parseDuration(text, option: option)
            guard value >= 0 else { throw .invalidArgument(what: option, reason: "\(option) cannot be negative") }
            // As docker: a duration that is not 0 (the default) is at least a millisecond.
            if value > 0 && value < 1_000_000 {
                throw .invalidArgument(what: option, reason: "\(option) cannot be less than 1ms")
            }
            return value
        }
        let intervalValue = try duration(interval, "--health-interval")
        let timeoutValue = try duration(timeout, "--health-timeout")
        let startPeriodValue = try duration(startPeriod, "--health-start-period")
        let startIntervalValue = try duration(startInterval, "--health-start-interval")
        let retryCount = retries ?? 0
        let configured =
            !(command ?? "").isEmpty || intervalValue != 0 || timeoutValue != 0 || startPeriodValue != 0
            || startIntervalValue != 0 || retryCount != 0
        if disabled {
            if configured {
                throw .invalidArgument(
                    what: "--no-healthcheck", reason: "--no-healthcheck conflicts with --health-* options")
            }
            return ContainerConfiguration.Healthcheck(test: ["NONE"])
        }
        guard configured else { return nil }
        guard retryCount >= 0 else {
            throw .invalidArgument(what: "--health-retries", reason: "--health-retries cannot be negative")
        }
        var check = ContainerConfiguration.Healthcheck(test: (command ?? "").isEmpty ? [] : ["CMD-SHELL", command!])
        check.interval = intervalValue
        check.timeout = timeoutValue
        check.startPeriod = startPeriodValue
        check.startInterval = startIntervalValue
        check.retries = retryCount
        return check
    }
}
