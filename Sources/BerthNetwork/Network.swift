/// Container networking: pinned network namespaces, CNI plugin invocation (spec 1.0), port publishing.
public enum BerthNetwork {}
