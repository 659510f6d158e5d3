{{/*
The chart's name, or nameOverride.
*/}}
{{- define "notification-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of the release's objects: the release name when it already holds the
chart's name, else "<release>-<chart>"; 63 characters at most (a DNS label).
*/}}
{{- define "notification-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
"<chart>-<version>", for the helm.sh/chart label.
*/}}
{{- define "notification-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object of the release.
*/}}
{{- define "notification-operator.labels" -}}
helm.sh/chart: {{ include "notification-operator.chart" . }}
{{ include "notification-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ include "notification-operator.tag" . | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: saasaparilla-notifications
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The labels that select the operator's pods; fixed for a release's lifetime,
since a Deployment's selector cannot change.
*/}}
{{- define "notification-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "notification-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The image tag: image.tag, else the chart's appVersion.
*/}}
{{- define "notification-operator.tag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
The operator's ServiceAccount.
*/}}
{{- define "notification-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "notification-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Lease the replicas elect their leader with.
*/}}
{{- define "notification-operator.leaseName" -}}
{{- default (include "notification-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
What the operator does with the API in the namespaces it watches: the rules of
its ClusterRole, or of each of its per-namespace Roles.
*/}}
{{- define "notification-operator.rules" -}}
# The NotificationClusters it reconciles; users create and delete them.
- apiGroups: ["notifications.saasaparilla.dev"]
  resources: ["notificationclusters"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["notifications.saasaparilla.dev"]
  resources: ["notificationclusters/status"]
  verbs: ["get", "patch", "update"]
# Lets it set blockOwnerDeletion on the owner references of what it makes
# (the OwnerReferencesPermissionEnforcement admission plugin checks this verb;
# the topic finalizer itself is added with a patch of the object).
- apiGroups: ["notifications.saasaparilla.dev"]
  resources: ["notificationclusters/finalizers"]
  verbs: ["update"]
# What it makes for each NotificationCluster, and deletes when no longer wanted.
- apiGroups: [""]
  resources: ["configmaps", "services", "serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# Secrets one by one, no list, no watch: those a NotificationCluster names
# (Kafka's SASL credentials and CA, read to reach Kafka's admin API), and
# the forward port's secret it makes once per cluster.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
