import BerthJSON
import BerthKube
import Testing

@Suite struct DecodingErrorTests {
    @Test func unknownFieldsAreDroppedAndReportedByPath() throws {
        let text = #"""
            {"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","lables":{"a":"b"}},"spce":{},
             "spec":{"containers":[{"name":"a","image":"x"},{"name":"b","image":"y","imagePullPolcy":"Always",
               "ports":[{"containerPort":80,"hostPrt":8080}]}],
              "volumes":[{"name":"v","emptyDir":{"medum":"Memory"}}]}}
            """#
        var unknown: [String] = []
        let pod = try CoreV1.Pod(json: Array(text.utf8), unknownFields: &unknown)
        #expect(
            Set(unknown) == [
                "metadata.lables", "spce", "spec.containers[1].imagePullPolcy",
                "spec.containers[1].ports[0].hostPrt", "spec.volumes[0].emptyDir.medum",
            ])
        #expect(pod.spec.containers[1].imagePullPolicy == nil)
        #expect(!String(decoding: pod.jsonBytes(), as: UTF8.self).contains("Polcy"))
        // Without asking, nothing is collected and the decode still succeeds.
        #expect(try CoreV1.Pod(json: Array(text.utf8)).metadata.name == "p")
    }

    @Test func wrongTypesNameTheFieldPath() {
        func error(_ text: String) -> String {
            do {
                _ = try CoreV1.Pod(json: Array(text.utf8))
                return "no error"
            } catch {
                return error.description
            }
        }
        #expect(
            error(#"{"spec":{"containers":[{"name":"a","ports":[{"containerPort":"80"}]}]}}"#)
                == "spec.containers[0].ports[0].containerPort: expected integer, got string")
        #expect(
            error(#"{"spec":{"containers":[{},{"name":7}]}}"#) == "spec.containers[1].name: expected string, got number"
        )
        #expect(error(#"{"metadata":{"labels":{"a":1}}}"#) == "metadata.labels.a: expected string, got number")
        #expect(error(#"{"metadata":{"labels":[]}}"#) == "metadata.labels: expected object, got array")
        #expect(error(#"{"spec":{"containers":{}}}"#) == "spec.containers: expected array, got object")
        #expect(error(#"{"spec":{"hostNetwork":"yes"}}"#) == "spec.hostNetwork: expected boolean, got string")
        #expect(
            error(#"{"spec":{"containers":[{"ports":[{"containerPort":80.5}]}]}}"#)
                == "spec.containers[0].ports[0].containerPort: expected integer, got number 80.5")
        #expect(
            error(#"{"spec":{"containers":[{"ports":[{"containerPort":4294967296}]}]}}"#)
                == "spec.containers[0].ports[0].containerPort: expected integer, got 4294967296, out of range for Int32"
        )
        #expect(error(#"[]"#) == "expected object, got array")
        #expect(error(#"{"metadata":"#).hasPrefix("invalid JSON"))
    }

    @Test func nullLeavesAFieldAtItsZeroValue() throws {
        let pod = try CoreV1.Pod(
            json: Array(#"{"metadata":null,"spec":{"containers":null,"priority":null,"nodeName":null}}"#.utf8))
        #expect(pod.spec.containers.isEmpty)
        #expect(pod.spec.priority == nil)
        #expect(pod.spec.nodeName == nil)
    }
}
