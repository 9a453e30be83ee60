"""The sandbox's AWS: moto's WSGI app behind a thin front that fills moto's gaps (sandbox.awsgaps), adds the
timing AWS has and moto lacks (EKS CREATING/DELETING, EFS lifecycle states), the dependency checks EC2 makes
before deleting, fault injection, and saved backends so the world survives a service restart."""
