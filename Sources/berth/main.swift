print("berth: under construction")
