"""``minray up``: start a cluster on machines you can SSH into, from one YAML file.

``config.py`` reads and checks the file (pure), ``ssh.py`` runs scripts on the
hosts with the system's ``ssh`` client, ``commands.py`` is ``up``, ``down``,
``exec``, ``submit`` and ``attach``.
"""
