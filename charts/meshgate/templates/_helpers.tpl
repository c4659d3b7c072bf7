{{- define "meshgate.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{- define "meshgate.gatewayNamespace" -}}
{{ default .Release.Namespace .Values.gateway.namespace }}
{{- end -}}

{{- define "meshgate.readRules" -}}
- apiGroups: [appmesh.k8s.aws]
  resources: [meshes, virtualgateways, gatewayroutes, virtualservices, virtualrouters, virtualnodes, routes]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [namespaces, services]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
{{- end -}}

{{- define "meshgate.podSecurity" -}}
securityContext:
  runAsNonRoot: true
  seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "meshgate.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {drop: [ALL]}
{{- end -}}
