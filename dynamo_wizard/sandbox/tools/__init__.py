"""Fake `eksctl` and `helm`: thin executables (fakecli) that hand their argv to the sandbox service, which
acts on its simulated AWS and clusters and streams back output shaped like the real tools'."""
