"""Configuration: settings from the environment, the policy and its reload, the global scheduler's conf/."""
