"""clinic-edge-agent: reports a rural clinic's power and internet health to the central team.

Data flows one way:

    sources (SNMP router, Modbus UPS/meter, host)  -> Readings
        -> ReadingStore (SQLite outbox on local disk)
        -> Forwarder (live first, backlog behind, within a bandwidth budget)
        -> Publisher (paho-mqtt, QoS 1) -> central broker

A reading is deleted from the store only after the broker acknowledged it.
"""

__version__ = "0.1.0"
