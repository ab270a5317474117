{{/* The objects' names are the operator's defaults (its flags and the operator ConfigMap name
are fixed), so they do not depend on the release name. */}}

{{- define "llsd.labels" -}}
app.kubernetes.io/name: llama-stack-operator
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{- define "llsd.selector" -}}
app.kubernetes.io/component: manager
app.kubernetes.io/name: llama-stack-operator
{{- end }}

{{- define "llsd.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ $tag }}
{{- end -}}
{{- end }}

{{- define "llsd.certManager" -}}
{{- if not (has .Values.certs.mode (list "operator" "cert-manager")) -}}
{{- fail (printf "certs.mode: %q is neither operator nor cert-manager" .Values.certs.mode) -}}
{{- end -}}
{{- eq .Values.certs.mode "cert-manager" | ternary "true" "" -}}
{{- end }}

{{/* cert-manager's CA injection, for the webhook configurations and the CRD. */}}
{{- define "llsd.injectCA" -}}
{{- if include "llsd.certManager" . -}}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/llama-stack-operator-webhook
{{- end -}}
{{- end }}

{{/* Which namespaces' LlamaStackDistributions the webhooks see: all but the operator's own
and kube-system, unless webhooks.namespaceSelector says otherwise. */}}
{{- define "llsd.namespaceSelector" -}}
{{- if .Values.webhooks.namespaceSelector -}}
{{ toYaml .Values.webhooks.namespaceSelector }}
{{- else -}}
matchExpressions:
- key: kubernetes.io/metadata.name
  operator: NotIn
  values: [{{ .Release.Namespace }}, kube-system]
{{- end -}}
{{- end }}
