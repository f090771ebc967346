import json, os, subprocess, sys
event = json.load(sys.stdin)
subprocess.Popen(["sleep", "302"], start_new_session=True)
json.dump({"records": [{"recordId": x["recordId"], "result": "Ok", "data": x["data"]} for x in event["records"]]}, sys.stdout)
