"""dynamo-wizard: deploy NVIDIA Dynamo on Amazon EKS Auto Mode, and tear it down again."""

__version__ = "0.1.0"
