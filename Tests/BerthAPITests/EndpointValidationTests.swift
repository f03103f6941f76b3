import Foundation
import Testing

@testable import BerthAPI

/// Endpoints and EndpointSlice addresses as upstream validates them (ValidateEndpointIP and the address
/// checks around it), on the strategies alone.
@Suite("endpoint address validation")
struct EndpointValidationTests {
    static func errors(_ causes: [APIError.Cause]) -> [String] { causes.map { "\($0.field): \($0.message)" } }

    static func slice(_ type: String, _ addresses: [String], name: String = "web-1") -> JSON {
        [
            "metadata": ["name": .string(name), "namespace": "default"], "addressType": .string(type),
            "endpoints": [["addresses": .array(addresses.map { .string($0) })]],
        ]
    }

    @Test func sliceAddressesMayNotBeLoopbackLinkLocalOrUnspecified() {
        let strategy = EndpointSliceStrategy()
        let v4 = Self.errors(
            strategy.validate(
                Self.slice("IPv4", ["10.0.0.1", "127.0.0.1", "169.254.169.254", "224.0.0.5", "0.0.0.0", "::1", "x"])))
        #expect(
            v4 == [
                #"endpoints[0].addresses[1]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)"#,
                #"endpoints[0].addresses[2]: Invalid value: "169.254.169.254": may not be in the link-local range (169.254.0.0/16, fe80::/10)"#,
                #"endpoints[0].addresses[3]: Invalid value: "224.0.0.5": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"#,
                #"endpoints[0].addresses[4]: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)"#,
                #"endpoints[0].addresses[5]: Invalid value: "::1": must be a valid IPv4 address"#,
                #"endpoints[0].addresses[5]: Invalid value: "::1": may not be in the loopback range (127.0.0.0/8, ::1/128)"#,
                #"endpoints[0].addresses[6]: Invalid value: "x": must be a valid IPv4 address"#,
                #"endpoints[0].addresses[6]: Invalid value: "x": must be a valid IP address"#,
            ], "\(v4)")
        let v6 = Self.errors(strategy.validate(Self.slice("IPv6", ["fd00::1", "::1", "fe80::1", "ff02::2", "::"])))
        #expect(
            v6 == [
                #"endpoints[0].addresses[1]: Invalid value: "::1": may not be in the loopback range (127.0.0.0/8, ::1/128)"#,
                #"endpoints[0].addresses[2]: Invalid value: "fe80::1": may not be in the link-local range (169.254.0.0/16, fe80::/10)"#,
                #"endpoints[0].addresses[3]: Invalid value: "ff02::2": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"#,
                #"endpoints[0].addresses[4]: Invalid value: "::": may not be unspecified (::)"#,
            ], "\(v6)")
        // An IPv4-mapped address is an IPv4 address to Go: not IPv6, and loopback.
        #expect(
            Self.errors(strategy.validate(Self.slice("IPv6", ["::ffff:127.0.0.1"]))).count == 2)
        // Names are not addresses: FQDN slices are not checked for ranges.
        #expect(strategy.validate(Self.slice("FQDN", ["db.example.com"])).isEmpty)
        #expect(
            Self.errors(strategy.validate(Self.slice("FQDN", ["localhost"]))) == [
                #"endpoints[0].addresses[0]: Invalid value: "localhost": should be a domain with at least two segments separated by dots"#
            ])
    }

    @Test func sliceAddressTypeIsRequiredKnownAndImmutable() {
        let strategy = EndpointSliceStrategy()
        var slice = Self.slice("IP", ["10.0.0.1"])
        #expect(
            Self.errors(strategy.validate(slice)) == [
                #"addressType: Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6""#
            ])
        slice["addressType"] = .null
        #expect(Self.errors(strategy.validate(slice)) == ["addressType: Required value"])
        slice["endpoints"] = [["addresses": []]]
        #expect(
            Self.errors(strategy.validate(slice)).contains(
                "endpoints[0].addresses: Required value: must contain at least 1 address"))
        let context = StrategyContext(
            resource: Registry.all.first { $0.plural == "endpointslices" }!, user: nil, subresource: nil,
            config: ServerConfig(dataDir: "/nonexistent"))
        #expect(
            Self.errors(
                strategy.validateUpdate(
                    Self.slice("IPv6", ["fd00::1"]), old: Self.slice("IPv4", ["10.0.0.1"]), context)) == [
                    #"addressType: Invalid value: "IPv6": field is immutable"#
                ])
    }

    /// Ports are defaulted (name "", protocol TCP) and then checked as upstream's validatePorts; an
    /// endpoint's zone, deprecated topology and hints as validateEndpoints.
    @Test func slicePortsZonesAndHintsAreDefaultedAndChecked() {
        let strategy = EndpointSliceStrategy()
        var slice = Self.slice("IPv4", ["10.0.0.1"])
        slice["ports"] = [
            ["port": 80], ["name": "https", "port": 443, "protocol": "UDP", "appProtocol": "k8s.io/h2c"],
        ]
        strategy.applyDefaults(&slice, creating: true)
        #expect(slice["ports"][0] == ["name": "", "protocol": "TCP", "port": 80])
        #expect(slice["ports"][1]["protocol"] == "UDP")
        #expect(strategy.validate(slice).isEmpty, "\(Self.errors(strategy.validate(slice)))")

        slice["ports"] = [
            ["name": "", "protocol": "TCP", "port": 80], ["name": "", "protocol": "TCP", "port": 81],
            ["name": "Web", "protocol": "ICMP", "port": 82, "appProtocol": "-bad"], ["name": "x", "port": 83],
        ]
        #expect(
            Self.errors(strategy.validate(slice)) == [
                #"ports[1].name: Duplicate value: """#,
                #"ports[2].name: Invalid value: "Web": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#,
                #"ports[2].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP""#,
                #"ports[2].appProtocol: Invalid value: "-bad": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"#,
                "ports[3].protocol: Required value",
            ], "\(Self.errors(strategy.validate(slice)))")
        slice["ports"] = .array(
            (0...100).map { ["name": .string("p\($0)"), "protocol": "TCP", "port": .int(Int64($0))] })
        #expect(Self.errors(strategy.validate(slice)) == ["ports: Too many: 101: must have at most 100 items"])

        slice["ports"] = .null
        slice["endpoints"] = [
            [
                "addresses": ["10.0.0.1"], "zone": "zone a",
                "deprecatedTopology": ["kubernetes.io/hostname": "node-1", "bad key!": "v"],
                "hints": ["forZones": [["name": "a"], ["name": "a"], ["name": "-b"]]],
            ]
        ]
        let label =
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        let errors = Self.errors(strategy.validate(slice))
        #expect(
            errors == [
                #"endpoints[0].deprecatedTopology: Invalid value: "bad key!": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"#,
                #"endpoints[0].zone: Invalid value: "zone a": "# + label,
                #"endpoints[0].hints.forZones[1].name: Duplicate value: "a""#,
                #"endpoints[0].hints.forZones[2].name: Invalid value: "-b": "# + label,
            ], "\(errors)")
        slice["endpoints"] = [
            ["addresses": ["10.0.0.1"], "hints": ["forZones": .array((1...9).map { ["name": .string("z\($0)")] })]]
        ]
        #expect(
            Self.errors(strategy.validate(slice)) == [
                "endpoints[0].hints.forZones: Too many: 9: must have at most 8 items"
            ])
    }

    @Test func endpointsAddressesAreCheckedAsUpstreamDoes() {
        let strategy = EndpointsStrategy()
        let endpoints: JSON = [
            "metadata": ["name": "db", "namespace": "default"],
            "subsets": [
                [
                    "addresses": [["ip": "10.0.0.1", "hostname": "Db"]],
                    "notReadyAddresses": [["ip": "127.0.0.2", "nodeName": "n1"]],
                ],
                ["ports": [["port": 5432]]],
            ],
        ]
        let errors = Self.errors(strategy.validate(endpoints))
        #expect(
            errors == [
                "subsets[0].addresses[0].hostname: Invalid value: \"Db\": \(Validation.labelNameText)",
                #"subsets[0].notReadyAddresses[0].ip: Invalid value: "127.0.0.2": may not be in the loopback range (127.0.0.0/8, ::1/128)"#,
                "subsets[1]: Required value: must specify `addresses` or `notReadyAddresses`",
            ], "\(errors)")
    }

    @Test func onlyTheAPIServersOwnEndpointsMayBeLoopback() {
        // default/kubernetes carries the API server's address, 127.0.0.1 on a single host.
        let own: JSON = [
            "metadata": ["name": "kubernetes", "namespace": "default"],
            "subsets": [["addresses": [["ip": "127.0.0.1"]], "ports": [["name": "https", "port": 6443]]]],
        ]
        #expect(EndpointsStrategy().validate(own).isEmpty)
        #expect(EndpointSliceStrategy().validate(Self.slice("IPv4", ["127.0.0.1"], name: "kubernetes")).isEmpty)
        // Link-local stays refused even there, and loopback elsewhere.
        #expect(EndpointSliceStrategy().validate(Self.slice("IPv4", ["169.254.0.1"], name: "kubernetes")).count == 1)
        var other = own
        other["metadata"]["namespace"] = "kube-system"
        #expect(EndpointsStrategy().validate(other).count == 1)
    }
}
