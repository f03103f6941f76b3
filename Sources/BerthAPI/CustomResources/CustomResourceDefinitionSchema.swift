extension Schema {
    /// apiextensions.k8s.io/v1's types in the table form of SchemaDefinitions.swift, written by hand:
    /// the generated table covers k8s.io/api, and these live in apiextensions-apiserver. A schema
    /// (JSONSchemaProps) is `a`: any JSON, checked by `StructuralSchema` when the definition is validated.
    static let customResourceDefinitionText = """
        apiextensions.v1.CustomResourceDefinition kind:s apiVersion:s metadata:@meta.v1.ObjectMeta
          spec:@apiextensions.v1.CustomResourceDefinitionSpec status:@apiextensions.v1.CustomResourceDefinitionStatus
        apiextensions.v1.CustomResourceDefinitionSpec group:s names:@apiextensions.v1.CustomResourceDefinitionNames
          scope:s versions:[@apiextensions.v1.CustomResourceDefinitionVersion!name
          conversion:@apiextensions.v1.CustomResourceConversion preserveUnknownFields:b
        apiextensions.v1.CustomResourceDefinitionNames plural:s singular:s shortNames:[s kind:s listKind:s categories:[s
        apiextensions.v1.CustomResourceConversion strategy:s webhook:a
        apiextensions.v1.CustomResourceDefinitionVersion name:s served:b storage:b deprecated:b deprecationWarning:s
          schema:@apiextensions.v1.CustomResourceValidation subresources:@apiextensions.v1.CustomResourceSubresources
          additionalPrinterColumns:[@apiextensions.v1.CustomResourceColumnDefinition
          selectableFields:[@apiextensions.v1.SelectableField
        apiextensions.v1.CustomResourceValidation openAPIV3Schema:a
        apiextensions.v1.CustomResourceSubresources status:a scale:@apiextensions.v1.CustomResourceSubresourceScale
        apiextensions.v1.CustomResourceSubresourceScale specReplicasPath:s statusReplicasPath:s labelSelectorPath:s
        apiextensions.v1.CustomResourceColumnDefinition name:s type:s format:s description:s priority:i jsonPath:s
        apiextensions.v1.SelectableField jsonPath:s
        apiextensions.v1.CustomResourceDefinitionStatus conditions:[@apiextensions.v1.CustomResourceDefinitionCondition!type
          acceptedNames:@apiextensions.v1.CustomResourceDefinitionNames storedVersions:[s
        apiextensions.v1.CustomResourceDefinitionCondition type:s status:s lastTransitionTime:t reason:s message:s
        """
}
