"""The controller simulation: what EKS Auto Mode, the kubelet and the Dynamo operator do to a cluster's
objects, on the sandbox's scaled clock (sandbox contract §4)."""
