"""The sandbox: AWS and an EKS Auto Mode cluster simulated on 127.0.0.1, so the whole product runs with no
AWS account (`dynamo-wizard --sandbox`). See /work/notes/sandbox-contract.md for its interface:

- `client`   activate/stop/reset/env from the product's process (starts the service detached);
- `service`  the long-lived process: moto behind `aws.front`, one fake API server + controller
             simulation per cluster (`kube`, `cluster`), the fake tools' back end (`tools`);
- `awsgaps`  what moto lacks (capacity reservations, quotas, pricing, add-ons).
"""
