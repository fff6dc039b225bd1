{{/* Labels of every gateway object (component defaults to "gateway"). */}}
{{- define "gpufleet.gatewayLabels" -}}
app.kubernetes.io/name: {{ .Values.gateway.name | quote }}
app.kubernetes.io/component: gateway
app.kubernetes.io/part-of: gpufleet
{{- end }}

{{- define "gpufleet.gatewaySelector" -}}
app.kubernetes.io/name: {{ .Values.gateway.name | quote }}
{{- end }}

{{/* Selector labels of one engine workload; the context is an item of .Values.engines. */}}
{{- define "gpufleet.engineSelector" -}}
app.kubernetes.io/name: vllm
app.kubernetes.io/instance: {{ .name | quote }}
{{- end }}

{{/* Labels of one engine's objects and pods (the gateway's discovery reads them). */}}
{{- define "gpufleet.engineLabels" -}}
{{ include "gpufleet.engineSelector" . }}
app.kubernetes.io/component: engine
app.kubernetes.io/part-of: gpufleet
gpufleet.io/model: {{ .modelLabel | quote }}
gpufleet.io/pool: {{ .poolLabel | quote }}
gpufleet.io/gpu: {{ .gpuLabel | quote }}
{{- end }}

{{/* Node affinity of GPU pods; context: dict "gpuType" "capacity" "poolLabel". */}}
{{- define "gpufleet.gpuAffinity" -}}
nodeAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    nodeSelectorTerms:
    - matchExpressions:
      - key: gpufleet.io/gpu-type
        operator: In
        values:
        - {{ .gpuType | quote }}
      - key: gpufleet.io/capacity
        operator: In
        values:
        - {{ .capacity | quote }}
  preferredDuringSchedulingIgnoredDuringExecution:
  - weight: 100
    preference:
      matchExpressions:
      - key: gpufleet.io/pool
        operator: In
        values:
        - {{ .poolLabel | quote }}
{{- end }}

{{/* An init container fetching one model's weights; context: dict "root" $ "name" "uri" "sha256" "dir". */}}
{{- define "gpufleet.fetchContainer" -}}
- name: {{ .name | quote }}
  image: {{ .root.Values.engine.fetchImage | quote }}
  command:
  - /bin/sh
  - /opt/gpufleet/fetch-weights.sh
  env:
  - name: WEIGHTS_URI
    value: {{ .uri | quote }}
  - name: WEIGHTS_SHA256
    value: {{ .sha256 | quote }}
  - name: WEIGHTS_DIR
    value: {{ .dir | quote }}
  resources:
    requests:
      cpu: "1"
      memory: 2Gi
  volumeMounts:
  - name: models
    mountPath: /models
  - name: scripts
    mountPath: /opt/gpufleet
    readOnly: true
{{- end }}

{{/* The node-local weights cache and the hook scripts; context: the root. */}}
{{- define "gpufleet.sharedVolumes" -}}
- name: models
  hostPath:
    path: {{ .Values.engine.weightsCacheDir | quote }}
    type: DirectoryOrCreate
{{- end }}

{{- define "gpufleet.scriptsVolume" -}}
- name: scripts
  configMap:
    name: gpufleet-engine-scripts
    defaultMode: 365
{{- end }}

{{/* The pod spec of an engine; context: dict "root" $ "e" (engine) "role" (single|leader|worker). */}}
{{- define "gpufleet.enginePod" -}}
{{- $e := .e -}}
{{- $root := .root -}}
{{- $serving := ne .role "worker" -}}
serviceAccountName: gpufleet-engine
automountServiceAccountToken: false
terminationGracePeriodSeconds: {{ $e.terminationGracePeriodSeconds }}
affinity:
  {{- include "gpufleet.gpuAffinity" (dict "gpuType" $e.gpuType "capacity" $e.capacity "poolLabel" $e.poolLabel) | nindent 2 }}
tolerations:
- key: nvidia.com/gpu
  operator: Exists
  effect: NoSchedule
{{- with $e.weights }}
initContainers:
{{- include "gpufleet.fetchContainer" (dict "root" $root "name" "fetch-weights" "uri" .uri "sha256" .sha256 "dir" .dir) | nindent 0 }}
{{- end }}
containers:
- name: vllm
  image: {{ $e.image | quote }}
  {{- if eq .role "single" }}
  command:
  - vllm
  - serve
  args:
  {{- toYaml $e.args | nindent 2 }}
  {{- else if eq .role "leader" }}
  command:
  - /bin/sh
  - -c
  args:
  - {{ printf "bash /vllm-workspace/examples/online_serving/multi-node-serving.sh leader --ray_cluster_size=$LWS_GROUP_SIZE && exec vllm serve%s" (include "gpufleet.quotedArgs" $e.args) | quote }}
  {{- else }}
  command:
  - /bin/sh
  - -c
  args:
  - exec bash /vllm-workspace/examples/online_serving/multi-node-serving.sh worker --ray_address=$LWS_LEADER_ADDRESS
  {{- end }}
  env:
  - name: HF_HOME
    value: /models/.hf
  {{- with $root.Values.engine.hfTokenSecret }}
  - name: HF_TOKEN
    valueFrom:
      secretKeyRef:
        name: {{ . | quote }}
        key: token
        optional: true
  {{- end }}
  {{- if $serving }}
  - name: POD_IP
    valueFrom:
      fieldRef:
        fieldPath: status.podIP
  - name: ENGINE_PORT
    value: {{ $root.Values.engine.port | quote }}
  - name: GPUFLEET_GATEWAY_HOST
    value: {{ printf "%s-headless.%s.svc" $root.Values.gateway.name $root.Release.Namespace | quote }}
  - name: GPUFLEET_GATEWAY_PORT
    value: {{ $root.Values.gateway.port | quote }}
  - name: DRAIN_TIMEOUT_S
    value: {{ $e.drainTimeoutSeconds | quote }}
  ports:
  - name: http
    containerPort: {{ $root.Values.engine.port }}
    protocol: TCP
  {{- end }}
  resources:
    requests:
      cpu: {{ $e.resources.cpu | quote }}
      memory: {{ $e.resources.memory | quote }}
      nvidia.com/gpu: {{ $e.gpus | quote }}
    limits:
      nvidia.com/gpu: {{ $e.gpus | quote }}
  {{- if $serving }}
  startupProbe:
    httpGet:
      path: /health
      port: http
    periodSeconds: 10
    timeoutSeconds: 5
    failureThreshold: {{ $e.startupFailureThreshold }}
  readinessProbe:
    httpGet:
      path: /health
      port: http
    periodSeconds: 5
    timeoutSeconds: 3
    failureThreshold: 3
  livenessProbe:
    httpGet:
      path: /health
      port: http
    periodSeconds: 10
    timeoutSeconds: 5
    failureThreshold: 6
  lifecycle:
    preStop:
      exec:
        command:
        - python3
        - /opt/gpufleet/drain.py
  {{- end }}
  volumeMounts:
  - name: models
    mountPath: /models
  - name: dshm
    mountPath: /dev/shm
  - name: scripts
    mountPath: /opt/gpufleet
    readOnly: true
volumes:
{{- include "gpufleet.sharedVolumes" $root | nindent 0 }}
- name: dshm
  emptyDir:
    medium: Memory
    sizeLimit: {{ $e.resources.shm | quote }}
{{- include "gpufleet.scriptsVolume" $root | nindent 0 }}
{{- end }}

{{/* vLLM arguments single-quoted for sh, each preceded by a space. */}}
{{- define "gpufleet.quotedArgs" -}}
{{- range . }} {{ . | squote }}{{ end }}
{{- end }}
