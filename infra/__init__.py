"""The users API's AWS CDK app: one stack per stage (`cdk synth -c stage=dev|prod`)."""
