"""A drop-in for Provena's `EcsSqsPythonTools`, talking to jobd instead of SQS and DynamoDB.

Install it with `pip install 'provena-jobd[worker]'` in place of Provena's
`ecs-sqs-python-tools`; a service's `jobs/` code (`ecs_job_worker(worker_callback)`) runs
unchanged. See docs/workers.md for the environment it reads.
"""
