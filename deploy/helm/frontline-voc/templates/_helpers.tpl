{{/* Ports of each service (the settings classes' defaults; tests/deploy checks they agree). */}}
{{- define "voc.ports" -}}
feedback: {http: 8010, grpc: 9010}
profile: {http: 8020, grpc: 9020}
actions: {http: 8030, grpc: 9030}
notify: {http: 8040, grpc: 9040}
{{- end }}

{{- define "voc.serviceNames" -}}
[feedback, profile, actions, notify]
{{- end }}

{{/* Labels on every object: the kustomize ones plus Helm's. Call with (dict "root" $ "name" "feedback"). */}}
{{- define "voc.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/part-of: frontline-voc
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end }}

{{- define "voc.image" -}}
{{ printf "%s/%s:%s" .root.Values.image.repository .name (.root.Values.image.tag | default .root.Chart.AppVersion) }}
{{- end }}

{{- define "voc.secret" -}}
{{ required "existingSecret: the Secret with the tokens (keys as in deploy/k8s/base/secret.example.yaml)" .Values.existingSecret }}
{{- end }}

{{- define "voc.natsSecret" -}}
{{ .Values.nats.auth.secret | default (include "voc.secret" .) }}
{{- end }}

{{- define "voc.databaseSecret" -}}
{{ (index .root.Values.databases .name).secret | default (include "voc.secret" .root) }}
{{- end }}

{{- define "voc.notifyPublicUrl" -}}
{{- if .Values.notify.publicUrl }}{{ .Values.notify.publicUrl }}
{{- else if and .Values.ingress.enabled .Values.ingress.staff.host }}https://{{ .Values.ingress.staff.host }}
{{- end }}
{{- end }}

{{- /* The manager console's origin (VOC_CONSOLE_ORIGINS of every service): console.origin, else
the intake host when the ingress routes the console there; empty: none (same origin only). */}}
{{- define "voc.consoleOrigin" -}}
{{- if .Values.console.origin }}{{ .Values.console.origin }}
{{- else if and .Values.ingress.enabled .Values.ingress.intake.host .Values.ingress.intake.console }}https://{{ .Values.ingress.intake.host }}
{{- end }}
{{- end }}

{{- /* Where the console reaches actions' playbook API (feedback's VOC_ACTIONS_PUBLIC_URL). */}}
{{- define "voc.actionsPublicUrl" -}}
{{- .Values.console.actionsPublicUrl | default (include "voc.consoleOrigin" .) }}
{{- end }}

{{/* The settings shared by every service: ConfigMap voc-config, and inline in the migration
Jobs (pre-install hooks run before the release's ConfigMaps exist). */}}
{{- define "voc.configData" -}}
VOC_ENV: production
VOC_HOST: 0.0.0.0
VOC_DATA_DIR: /var/lib/voc
VOC_LOG_FORMAT: {{ .Values.config.logFormat | quote }}
VOC_LOG_LEVEL: {{ .Values.config.logLevel | quote }}
VOC_NATS_URL: {{ include "voc.natsUrl" . | quote }}
VOC_NATS_STREAM_REPLICAS: {{ .Values.nats.streamReplicas | quote }}
VOC_NATS_TLS_CA: /etc/voc/tls/ca.crt
VOC_NATS_TLS_CERT: /etc/voc/tls/tls.crt
VOC_NATS_TLS_KEY: /etc/voc/tls/tls.key
VOC_GRPC_TLS_CERT: /etc/voc/tls/tls.crt
VOC_GRPC_TLS_KEY: /etc/voc/tls/tls.key
VOC_GRPC_TLS_CA: /etc/voc/tls/ca.crt
VOC_GRPC_TLS_CLIENT_AUTH: require
{{- $ports := include "voc.ports" . | fromYaml }}
{{- range $name := include "voc.serviceNames" . | fromYamlArray }}
VOC_{{ upper $name }}_GRPC_TARGET: {{ printf "dns:///%s-grpc:%v" $name (index $ports $name).grpc | quote }}
{{- end }}
VOC_GRPC_TIMEOUT_SECONDS: {{ .Values.config.grpcTimeoutSeconds | quote }}
VOC_CONSOLE_ORIGINS: {{ include "voc.consoleOrigin" . | quote }}
VOC_TRUSTED_PROXIES: {{ .Values.config.trustedProxies | quote }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ .Values.config.otlpEndpoint | quote }}
{{- range $key, $value := .Values.config.extraEnv }}
{{ $key }}: {{ $value | quote }}
{{- end }}
{{- end }}

{{- define "voc.natsUrl" -}}
{{- $urls := list }}
{{- range $i := until (int .Values.nats.replicas) }}
{{- $urls = append $urls (printf "tls://nats-%d.nats-headless:4222" $i) }}
{{- end }}
{{- join "," $urls }}
{{- end }}

{{- define "voc.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end }}

{{/* The secrets a service reads (Deployment and migration Job alike). */}}
{{- define "voc.serviceSecretEnv" -}}
{{- $root := .root }}
{{- $name := .name }}
{{ include "voc.secretEnv" (dict "env" (printf "VOC_%s_DATABASE_URL" (upper $name)) "secret" (include "voc.databaseSecret" .) "key" (index $root.Values.databases $name).key) }}
{{ include "voc.secretEnv" (dict "env" "VOC_ADMIN_TOKEN" "secret" (include "voc.secret" $root) "key" "admin-token") }}
{{ include "voc.secretEnv" (dict "env" "VOC_INTERNAL_TOKEN" "secret" (include "voc.secret" $root) "key" "internal-token") }}
{{ include "voc.secretEnv" (dict "env" "VOC_JWT_SECRET" "secret" (include "voc.secret" $root) "key" "jwt-secret") }}
{{- if eq $name "feedback" }}
{{ include "voc.secretEnv" (dict "env" "VOC_FEEDBACK_FOLLOW_UP_SECRET" "secret" (include "voc.secret" $root) "key" "feedback-follow-up-secret") }}
{{- end }}
{{- end }}

{{- define "voc.podSecurityContext" -}}
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "voc.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
{{- end }}

{{- define "voc.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
